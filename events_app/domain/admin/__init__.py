"""Administration: organiser accounts, API tokens and the audit log."""
