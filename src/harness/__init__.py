"""Verification harness for the MAS Dockerfile build-knobs patch."""
