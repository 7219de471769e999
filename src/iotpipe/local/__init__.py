"""Local development stack: an S3/SQS stand-in and the trigger loop (never used on AWS)."""
