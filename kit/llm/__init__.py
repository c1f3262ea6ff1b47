"""Stage 12: a language model made here and served with real engines.

- :mod:`kit.llm.corpus`: the generated training text (no download);
- :mod:`kit.llm.model`: the BPE tokenizer (``tokenizers``), the tiny Llama-style model (``transformers``),
  its brief training and the serving artifact in Hugging Face format (:mod:`kit.llm.artifact`,
  ``python -m kit.llm.train``);
- :mod:`kit.llm.paths`: which way this machine serves it (vLLM within the 4 GiB budget, or the small path);
- :mod:`kit.llm.server`: vLLM's OpenAI-compatible server as a kit server process;
- :mod:`kit.llm.small`: the small path, the model in this process behind a streaming endpoint;
- :mod:`kit.llm.rayserve`: Ray Serve in front of the engine, around the small path, and Ray Serve LLM;
- :mod:`kit.llm.client`: a streaming client that measures time to first token and per output token;
- :mod:`kit.llm.metrics`, :mod:`kit.llm.sizing`: the engine's gauges and stats lines, KV-cache arithmetic;
- :mod:`kit.llm.plots`: the stage's plots.

The LLM dependencies are an optional extra (``make lab LLM=1``; ``make test`` installs it); the doctor
says whether they are present. Nothing here imports them at module import time.
"""
