"""Graphormer-style decoders: graph convolution, graph residual blocks, Graphormer layers, the M2P
reverse-process decoder, the learned mesh up-sampler and a one-shot regressor baseline."""

from kinediff.decoders.embeddings import (
    SinusoidalStepEmbedding,
    VertexPositionEmbedding,
    sinusoidal_embedding,
)
from kinediff.decoders.graph import GraphConv, GraphResBlock, graph_conv, sparse_to_edges
from kinediff.decoders.graphormer import GraphormerEncoder, GraphormerLayer, check_head_split
from kinediff.decoders.m2p import M2PDecoder
from kinediff.decoders.regressor import GraphormerRegressor
from kinediff.decoders.upsample import MeshUpsampler

__all__ = [
    "GraphConv",
    "GraphResBlock",
    "GraphormerEncoder",
    "GraphormerLayer",
    "GraphormerRegressor",
    "M2PDecoder",
    "MeshUpsampler",
    "SinusoidalStepEmbedding",
    "VertexPositionEmbedding",
    "check_head_split",
    "graph_conv",
    "sinusoidal_embedding",
    "sparse_to_edges",
]
