"""Privacy: the versioned notice, "download my data", "erase my data" and the retention job."""
