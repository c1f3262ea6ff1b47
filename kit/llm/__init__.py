"""Stage 12: a language model made here and served with real engines.

- :mod:`kit.llm.corpus`: the generated training text (no download);
- :mod:`kit.llm.model`: the BPE tokenizer (``tokenizers``), the tiny Llama-style model (``transformers``),
  its brief training and the serving artifact in Hugging Face format;
- :mod:`kit.llm.server`: vLLM's OpenAI-compatible server as a kit server process;
- :mod:`kit.llm.client`: a streaming client that measures time to first token and per output token.

The LLM dependencies are an optional extra (``make lab LLM=1``; ``make test`` installs it); the doctor
says whether they are present. Nothing here imports them at module import time.
"""
