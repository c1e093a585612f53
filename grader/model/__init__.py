"""The student's model as the grader sees it: rebuilt from its config under limits and
allow-lists, its architecture's hash, the exercise's rules and the hints."""
