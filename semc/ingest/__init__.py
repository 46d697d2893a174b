"""SEMC Ingest: EPU and SerialEM folders."""
