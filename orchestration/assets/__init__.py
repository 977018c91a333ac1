"""The asset graph, one module per layer: landing → bronze → silver → gold."""
