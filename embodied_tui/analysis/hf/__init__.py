"""Hugging Face transformers, counted from ``config.json`` alone: ``config`` reads and normalises the config (JSON
only, never code), ``count`` gives exact parameter and MAC counts and the LLM phases (prefill, decode, KV cache),
``folder`` finds the config and weight files of a model folder, ``infer`` rebuilds a config from tensor names, and
``meta`` (optional, needs ``transformers``) builds the model on the meta device to cross-check."""
