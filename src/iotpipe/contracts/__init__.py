"""Contracts shipped with iotpipe (package data)."""
