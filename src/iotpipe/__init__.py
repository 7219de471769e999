"""iotpipe: a serverless pipeline for IoT device usage data."""

from __future__ import annotations

__version__ = "0.1.0"
