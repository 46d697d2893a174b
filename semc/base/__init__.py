"""Code shared by two or more processing steps."""
