"""The torch side: converters, the fx builder, mask sites and the Twin."""
