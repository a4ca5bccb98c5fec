"""Graph batches, neighbour graphs, input validation and dataset builders.

Light on purpose: only torch is imported here; dataset modules load their own dependencies.
"""

from .batch import GraphBatch, collate, edge_vectors, from_dense, to_dense
from .graphs import fully_connected_graph, knn_graph, periodic_radius_graph, radius_graph
from .validate import (check_batch_vector, check_finite, check_index, check_same_device,
                       check_same_dtype, check_same_length, check_shape, check_tensor)

__all__ = [
    "GraphBatch", "collate", "edge_vectors", "to_dense", "from_dense",
    "fully_connected_graph", "radius_graph", "knn_graph", "periodic_radius_graph",
    "check_tensor", "check_shape", "check_finite", "check_index", "check_batch_vector",
    "check_same_length", "check_same_dtype", "check_same_device",
]
