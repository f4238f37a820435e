"""The verbs both faces (CLI and TUI) call. One module per area: models (registry), hardware, fit, ask.
Services return plain data (pydantic records, dicts); they never print and never import textual."""
