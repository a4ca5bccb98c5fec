"""Cache blocking sizes: CPU-measured chunks on the CPU, far larger ones on other devices."""

import torch

from symformer.primitives._blocking import GPU_FACTOR, block_size


def test_cpu_keeps_its_measured_size_and_other_devices_get_larger_blocks():
    assert block_size(2048, torch.device("cpu")) == 2048
    assert block_size(2048, torch.device("meta")) == 2048 * GPU_FACTOR
    assert block_size(2048, torch.device("cuda")) == 2048 * GPU_FACTOR  # no CUDA needed


def test_so2_on_a_non_cpu_device_runs_in_one_chunk(monkeypatch):
    # count the edge-frame maps: CPU-sized chunks of 3 split 11 edges into 4, while a device
    # whose blocks are 256 times larger takes all 11 at once (meta tensors: shapes only)
    import symformer.primitives.tp.so2 as so2
    from symformer.primitives.tp import TensorProductSpec, tensor_product
    from symformer.reps import Irreps

    monkeypatch.setattr(so2, "EDGE_CHUNK", 3)
    calls, frame_map = [], so2._edge_frame_map
    monkeypatch.setattr(so2, "_edge_frame_map", lambda *a: calls.append(1) or frame_map(*a))
    spec = TensorProductSpec.channelwise(Irreps("2x0e+2x1o"), Irreps("0e+1o"),
                                         Irreps("2x0e+2x1o"), weight_mode="external")
    for device in ("cpu", "meta"):
        calls.clear()
        x = torch.randn(11, spec.irreps_in1.dim, device=device)
        w = torch.randn(11, spec.weight_numel, device=device)
        vec = torch.randn(11, 3, device=device)
        out = tensor_product(x, None, spec, w, "so2", edge_vec=vec)
        assert out.shape == (11, spec.irreps_out.dim)
        assert len(calls) == (4 if device == "cpu" else 1)
