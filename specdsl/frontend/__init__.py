"""Front ends: YAML and the text DSL, each building plain data plus a SourceMap."""
