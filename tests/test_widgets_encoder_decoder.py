"""Chapter 7's parameter-count explorer: its stacked bar adds up to what PyTorch counts."""
import numpy as np
import torch

from helpers.widgets.encoder_decoder import PART_COLORS, ParameterCountExplorer


def segments(explorer):
    ax = explorer.figure.axes[0]
    # one BarContainer per part, labelled "part: x.xxM", holding one Rectangle
    return {c.get_label().split(":")[0]: c.patches[0].get_height() * 1e6 for c in ax.containers}


def torch_count(d_model, d_ff, n_layers, vocab, tied):
    """Count by instantiating: nn.Transformer plus embedding tables (and an untied output layer)."""
    model = torch.nn.Transformer(d_model, nhead=2, num_encoder_layers=n_layers,
                                 num_decoder_layers=n_layers, dim_feedforward=d_ff, batch_first=True)
    tables = 1 if tied else 3  # source, target embeddings and the pre-softmax layer (no bias)
    return sum(p.numel() for p in model.parameters()) + tables * vocab * d_model


def set_values(explorer, **values):
    for name, value in values.items():
        explorer.controls[name].value = value


def test_total_equals_counting_nn_Transformer():
    explorer = ParameterCountExplorer()
    for tied in (True, False):
        set_values(explorer, d_model=64, d_ff=256, N=2, vocab=1000, tied=tied)
        parts = segments(explorer)
        assert list(parts) == list(PART_COLORS)
        assert abs(sum(parts.values()) - torch_count(64, 256, 2, 1000, tied)) < 0.5
        assert f"total {torch_count(64, 256, 2, 1000, tied) / 1e6:.2f}M" in explorer.figure.axes[0].get_title()


def test_segments_stack_without_gaps():
    explorer = ParameterCountExplorer()
    ax = explorer.figure.axes[0]
    rects = [p for c in ax.containers for p in c]
    bottoms = np.array([r.get_y() for r in rects])
    tops = bottoms + np.array([r.get_height() for r in rects])
    np.testing.assert_allclose(bottoms[1:], tops[:-1])
    assert bottoms[0] == 0


def test_paper_base_configuration():
    explorer = ParameterCountExplorer()  # starts at d_model 512, d_ff 2048, N 6, vocab 37000, tied
    parts = segments(explorer)
    d, f = 512, 2048
    assert abs(parts["embeddings"] - 37000 * d) < 0.5
    assert abs(parts["encoder FFN"] - 6 * (2 * d * f + f + d)) < 0.5
    assert abs(parts["decoder cross-attention"] - 6 * (4 * d * d + 4 * d)) < 0.5
    assert parts["output projection"] == 0


def test_doubling_N_doubles_the_layers_but_not_the_embeddings():
    explorer = ParameterCountExplorer()
    before = segments(explorer)
    explorer.controls["N"].value = 12
    after = segments(explorer)
    assert after["embeddings"] == before["embeddings"]
    assert after["final LayerNorms"] == before["final LayerNorms"]
    for part in ("encoder attention", "decoder FFN", "decoder LayerNorms"):
        assert abs(after[part] - 2 * before[part]) < 1
