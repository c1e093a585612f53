"""Running the student's notebook: validating the file, the sandboxed kernel and what runs
inside it, what a dead kernel left, what the notebook's source claims, and the extraction
payload."""
