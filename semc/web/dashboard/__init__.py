"""Live session dashboard (server-rendered pages)."""
