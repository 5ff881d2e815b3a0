"""The one schema both syntaxes are validated by (pydantic), and its JSON Schema."""
