"""Static assets of the local server: the OpenAPI spec and the chart page (package data)."""
