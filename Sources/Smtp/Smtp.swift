// Placeholder; the Smtp module has its own issue.
