"""The one schema both syntaxes are validated by (specdsl.ops.model; pydantic for errors), and its JSON Schema."""
