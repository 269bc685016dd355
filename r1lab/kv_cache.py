"""The KV cache of r1lab's decoding loops: which keyword a model takes it by, and room reserved for new positions.

HF's ``DynamicLayer`` appends each decoding step's keys and values by concatenation, a copy of every cached
position per step and layer. :func:`reserve_cache` swaps each plain layer of a filled cache for one over buffers
with room to grow, written in place. transformers is imported on first use only (it is heavy): the layer class is
built then.
"""

from __future__ import annotations

import inspect
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def forward_accepts(model, name: str) -> bool:
    """Whether ``model.forward`` takes the keyword ``name``."""
    return name in inspect.signature(model.forward).parameters


def cache_keyword(model) -> str:
    """The keyword ``model.forward`` takes its KV cache by: ``cache`` (newer transformers) or ``past_key_values``."""
    return "cache" if forward_accepts(model, "cache") else "past_key_values"


def reserve_cache(cache, tokens: int) -> None:
    """Give each plain (full-attention, growing) layer of a filled KV cache room for ``tokens`` more positions, so
    that each decoding step writes its keys and values in place instead of copying the whole cache to append them
    (HF's DynamicLayer concatenates: a copy of every cached position per step and layer). Other layer kinds (sliding
    window, quantized, linear attention) are left as they are."""
    from transformers.cache_utils import DynamicLayer

    layers = getattr(cache, "layers", None)
    if layers is None:
        return
    reserved = _reserved_layer_class()
    for index, layer in enumerate(layers):
        if type(layer) is DynamicLayer and layer.is_initialized and layer.get_seq_length() > 0:
            layers[index] = reserved.adopt(layer, tokens)


def _reserved_layer_class():
    """The ReservedLayer class, built on first use (importing transformers only then)."""
    from transformers.cache_utils import DynamicLayer

    class ReservedLayer(DynamicLayer):
        """A DynamicLayer over buffers with room to grow; ``keys``/``values`` are views of the filled part."""

        length: int  # positions filled
        key_buffer: torch.Tensor
        value_buffer: torch.Tensor

        @classmethod
        def adopt(cls, layer, tokens: int):
            new = cls()
            new.device, new.is_initialized = layer.keys.device, True
            new.length = layer.keys.shape[-2]
            new.key_buffer = _with_room(layer.keys, new.length, new.length + tokens)
            new.value_buffer = _with_room(layer.values, new.length, new.length + tokens)
            new._views()
            return new

        def _views(self):
            self.keys = self.key_buffer[:, :, : self.length]
            self.values = self.value_buffer[:, :, : self.length]

        def update(self, key_states, value_states, *args, **kwargs):
            end = self.length + key_states.shape[-2]
            if end > self.key_buffer.shape[-2]:
                room = max(end, 2 * self.key_buffer.shape[-2])
                self.key_buffer = _with_room(self.key_buffer, self.length, room)
                self.value_buffer = _with_room(self.value_buffer, self.length, room)
            self.key_buffer[:, :, self.length : end] = key_states
            self.value_buffer[:, :, self.length : end] = value_states
            self.length = end
            self._views()
            return self.keys, self.values

        def reorder_cache(self, beam_idx):
            self.key_buffer = self.key_buffer.index_select(0, beam_idx.to(self.key_buffer.device))
            self.value_buffer = self.value_buffer.index_select(0, beam_idx.to(self.value_buffer.device))
            self._views()

        def batch_select_indices(self, indices):
            import torch

            self.reorder_cache(indices.nonzero().flatten() if indices.dtype == torch.bool else indices)

        def crop(self, tokens_to_remove: int) -> None:
            if tokens_to_remove < 0:
                self.length = max(0, self.length + tokens_to_remove)
                self._views()

        def batch_repeat_interleave(self, repeats: int) -> None:
            self.key_buffer = self.key_buffer.repeat_interleave(repeats, dim=0)
            self.value_buffer = self.value_buffer.repeat_interleave(repeats, dim=0)
            self._views()

    return ReservedLayer


def _with_room(tensor, filled: int, room: int):
    """A (batch, heads, room, dim) buffer holding ``tensor``'s first ``filled`` positions."""
    buffer = tensor.new_empty((*tensor.shape[:2], room, *tensor.shape[3:]))
    buffer[:, :, :filled] = tensor[:, :, :filled]
    return buffer
