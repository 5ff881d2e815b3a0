"""Pure passes over the graph: shapes, figures, receptive fields, alignment, memory."""
