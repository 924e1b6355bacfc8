"""Show and Tell in torch: a timm encoder, a linear image embedding, an LSTM that reads it first.

Training (teacher forcing): the LSTM reads ``[image embedding, <start>, w1 .. wn]``
and is asked for ``[w1 .. wn, <end>]`` at the outputs after the image.  The
image embedding keeps the encoder's last feature map *with* its spatial
layout (flattened, not pooled): the captions talk about left/right/above/below.

Export splits the same weights into three graphs (see ``graphs``) so that
beam search can run in numpy over any runner.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from apptool.backbones import create_encoder
from apptool_captioning.text import PAD_ID


class ShowAndTell(nn.Module):
    """CNN encoder -> image embedding -> LSTM language model over the vocabulary."""

    def __init__(
        self,
        vocab_size: int,
        backbone: str,
        pretrained=None,
        image_size: int = 64,
        embed_dim: int = 128,
        hidden_dim: int = 256,
        dropout: float = 0.3,
    ):
        super().__init__()
        self.encoder = create_encoder(backbone, pretrained)
        self.encoder.eval()
        with torch.no_grad():
            grid = self.encoder(torch.zeros(1, 3, image_size, image_size))[-1].shape[1:]
        self.encoder.train()
        # batch norm keeps the image embedding zero-mean, on the word embeddings' scale: without it the
        # projection drifts to a large constant offset (norm ~80 against ~10) that saturates the LSTM gates
        self.project = nn.Sequential(
            nn.Flatten(), nn.Dropout(dropout), nn.Linear(grid.numel(), embed_dim), nn.BatchNorm1d(embed_dim)
        )
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD_ID)
        self.lstm = nn.LSTM(embed_dim, hidden_dim, batch_first=True)
        with torch.no_grad():  # forget-gate bias 2 (gates: input, forget, cell, output): the cell state must
            # carry the image, read once before the first word, through the whole sentence (Gers et al. 2000)
            self.lstm.bias_ih_l0[hidden_dim : 2 * hidden_dim].fill_(2.0)
            self.lstm.bias_hh_l0[hidden_dim : 2 * hidden_dim].zero_()
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(hidden_dim, vocab_size)

    def image_embedding(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) normalised images -> (B, embed_dim)."""
        return self.project(self.encoder(images)[-1])

    def forward(self, images: torch.Tensor, captions: torch.Tensor) -> torch.Tensor:
        """Logits (B*R, L-1, V) for ``captions[:, :, 1:]`` given (B, R, L) encoded references of each image."""
        batch, refs, length = captions.shape
        embedding = self.image_embedding(images).repeat_interleave(refs, dim=0)
        words = self.embed(captions[:, :, :-1].reshape(batch * refs, length - 1))
        hidden, _ = self.lstm(self.drop(torch.cat([embedding[:, None], words], dim=1)))
        return self.out(self.drop(hidden[:, 1:]))


def caption_loss(model: ShowAndTell, images: torch.Tensor, captions: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy per real target token (padding and absent references are ignored)."""
    logits = model(images, captions)
    targets = captions[:, :, 1:].reshape(-1)
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets, ignore_index=PAD_ID)


class EncoderGraph(nn.Module):
    """Export graph "encoder": image (B, 3, S, S) -> embedding (B, E)."""

    def __init__(self, model: ShowAndTell):
        super().__init__()
        self.model = model

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.model.image_embedding(image)


class DecoderInitGraph(nn.Module):
    """Export graph "decoder_init": embedding (B, E) -> h, c (B, H) after the LSTM's first step on the image."""

    def __init__(self, model: ShowAndTell):
        super().__init__()
        self.lstm = model.lstm

    def forward(self, embedding: torch.Tensor):
        _, (h, c) = self.lstm(embedding[:, None])
        return h[0], c[0]


class DecoderStepGraph(nn.Module):
    """Export graph "decoder_step": token (B,) int64, h, c (B, H) -> log_probs (B, V), h_out, c_out."""

    def __init__(self, model: ShowAndTell):
        super().__init__()
        self.embed, self.lstm, self.out = model.embed, model.lstm, model.out

    def forward(self, token: torch.Tensor, h: torch.Tensor, c: torch.Tensor):
        hidden, (h2, c2) = self.lstm(self.embed(token)[:, None], (h[None], c[None]))
        return F.log_softmax(self.out(hidden[:, 0]), dim=-1), h2[0], c2[0]
