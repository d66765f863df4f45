"""Door check-in: scanning tickets at the entrance, online and offline, and re-issuing a ticket."""
