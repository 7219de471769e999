"""AWS adapters: event decoding, S3 objects, Secrets Manager."""
