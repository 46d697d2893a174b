"""SEMC Events and quality control."""
