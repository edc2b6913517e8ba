"""The `tiny` translation preset: M2M100's own classes with random weights and an in-process tokenizer.

Built offline and deterministically (a seeded model, a SentencePiece model trained single-threaded on
fixed sentences), so tests and the tiny `easel run` exercise the production translation code without
the 1.9 GB download. Its translations are gibberish, always the same gibberish for the same input.
"""

from __future__ import annotations

import io
import json
import tempfile
from pathlib import Path

import sentencepiece
import torch
from transformers import M2M100Config, M2M100ForConditionalGeneration, M2M100Tokenizer

# A few scripts each, so non-Latin prompts become real pieces rather than unknown tokens.
_SENTENCES = (
    "a red cat asleep on a windowsill, oil painting",
    "a lighthouse on a cliff at dawn in the style of Van Gogh",
    "кот в стиле Ван Гога, масляная живопись",
    "一只红色的猫在窗台上睡觉",
    "赤い猫が窓辺で寝ている",
    "빨간 고양이가 창가에서 자고 있다",
    "قطة حمراء نائمة على حافة النافذة",
    "लाल बिल्ली खिड़की पर सो रही है",
    "חתול אדום ישן על אדן החלון",
    "μια κόκκινη γάτα κοιμάται στο παράθυρο",
    "แมวสีแดงนอนหลับอยู่บนขอบหน้าต่าง",
)
_SPECIAL_TOKENS = ("<s>", "<pad>", "</s>", "<unk>")


def tokenizer() -> M2M100Tokenizer:
    """An M2M100 tokenizer over a small BPE model; M2M100Tokenizer reads only files, so they pass through a temp dir."""
    proto = io.BytesIO()
    sentencepiece.SentencePieceTrainer.train(
        sentence_iterator=iter(_SENTENCES),
        model_writer=proto,
        vocab_size=160,
        model_type="bpe",
        character_coverage=1.0,
        hard_vocab_limit=False,
        num_threads=1,
        unk_id=0,
        bos_id=-1,
        eos_id=-1,
        minloglevel=2,
    )
    processor = sentencepiece.SentencePieceProcessor(model_proto=proto.getvalue())
    vocab = {token: index for index, token in enumerate(_SPECIAL_TOKENS)}
    for piece in range(processor.get_piece_size()):
        vocab.setdefault(processor.id_to_piece(piece), len(vocab))
    with tempfile.TemporaryDirectory(prefix="easel-tiny-translation-") as directory:
        vocab_file = Path(directory, "vocab.json")
        spm_file = Path(directory, "sentencepiece.bpe.model")
        vocab_file.write_text(json.dumps(vocab), encoding="utf-8")
        spm_file.write_bytes(proto.getvalue())
        return M2M100Tokenizer(str(vocab_file), str(spm_file), tgt_lang="en")


def model(seed: int, tokenizer: M2M100Tokenizer) -> M2M100ForConditionalGeneration:
    # Language tokens and the made-up words follow the SentencePiece vocabulary, as in the real checkpoints.
    vocab_size = tokenizer.encoder_size + len(tokenizer.lang_code_to_id) + tokenizer.num_madeup_words
    config = M2M100Config(
        vocab_size=vocab_size,
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=1024,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        decoder_start_token_id=tokenizer.eos_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return M2M100ForConditionalGeneration(config).eval()
