"""Packed documents (reset_attention_mask) through ops.metala_mix in bf16: the check that the GPU test runs on fla's
varlen kernels (test_ops_gpu.py) and that test_packed_mix_cpu.py runs on the CPU kernels, where it is also shown
to fail on a broken reset. Output and every gradient (mix_references.mix_errors' parts), in two comparisons:

  * `itself`: the packed batch against each document alone through the same kernels: each document at the start
    of a row of its own, followed by unrelated tokens (causal: they cannot matter) and no document_starts. Both
    sides round the same values to bf16 at the same points, and fla's varlen chunks start at each document as the
    alone rows' chunks do: what differs is fp32 summation order (kernel tiles; the gate_bias and aug_balance sums
    over another shape). That moves a bf16-rounded value by at most one bf16 unit (2^-8 relative), and only the
    rare values within an fp32 rounding of a bf16 rounding boundary, so each relative norm stays far below
    2^-8 = 3.9e-3, the bound. A document that sees the state of the one before it, forward or backward, is off by
    O(0.1-1) (test_packed_mix_cpu.py).
  * `fp64`: against each document alone through the fp64 reference, within max(1e-2, 1.5 x floor) per part, the
    floor being the error of the bf16-core-io reference (mix_references.py) on the same inputs. A packed batch has
    a first token per document, where the per-head LayerNorm can be nearly singular and amplify the core's bf16
    key and output ~10x in d q, d decay logits and d aug_balance: on 157 CPU draws of this case the floor's
    d projected ranges 2e-3 to 5e-2 (past 1e-2 in 30% of them), its d aug_balance reaches 1.1e-1, and in 9 of 10
    the worst token is a document's first. fla's own kernels (0.6.0, run on the CPU by the Triton interpreter)
    were 0.9-1.1x the floor on the amplified parts of two such draws, 1.8x on d v (~4e-3, not amplified).
"""

import torch

from mix_references import mix_errors, reference_mix

# Per row, lengths 1, 2, chunk-1, chunk+1, a chunk starting on a chunk boundary, several chunks, and few long
# documents (fla's chunk is 64); every row 512 tokens.
PACKED_LENGTHS = [[1, 2, 63, 65, 64, 130, 187], [300, 1, 1, 210]]
ITSELF_TOLERANCE = 2**-8
FP64_TOLERANCE = 1e-2
FLOOR_FACTOR = 1.5
REFERENCE_CHUNK = 64  # the fp64 recurrence in chunked form: exact, and fast on a GPU (mix_references.py)


def packed_starts(lengths=PACKED_LENGTHS, device="cpu"):
    """(document_starts (rows, seq) bool, [(row, start, length), ...]) for rows of equal total length."""
    starts = torch.zeros(len(lengths), sum(lengths[0]), dtype=torch.bool, device=device)
    documents = []
    for row, row_lengths in enumerate(lengths):
        position = 0
        for length in row_lengths:
            starts[row, position] = position > 0  # position 0: nothing precedes it, either value means the same
            documents.append((row, position, length))
            position += length
    return starts, documents


def each_document_alone(fn, packed, documents):
    """fn(piece) for each document's slice (1, length, ...) of `packed` (batch-first), concatenated back into the
    packed layout."""
    rows = sorted({row for row, _, _ in documents})
    return torch.cat(
        [torch.cat([fn(packed[row : row + 1, s : s + n]) for r, s, n in documents if r == row], 1) for row in rows]
    )


def alone_rows(packed, filler, documents):
    """(documents, seq, ...): document i at the start of row i, the rest of the row taken from filler[i]."""
    return torch.stack([torch.cat([packed[r, s : s + n], filler[i, n:]]) for i, (r, s, n) in enumerate(documents)])


def from_alone_rows(rows, documents):
    """The inverse of alone_rows for the documents' tokens: (packed rows, seq, ...)."""
    packed_rows = sorted({r for r, _, _ in documents})
    return torch.stack(
        [torch.cat([rows[i, :n] for i, (r, _, n) in enumerate(documents) if r == row]) for row in packed_rows]
    )


def draw_inputs(starts, documents, heads, head_k_dim, seed):
    """projected [q | decay logits | v | gate] (bf16, rounded once: the fp64 references see exactly the kernels'
    values), gate bias and self-augmentation weights (fp32), as in test_fused_gpu.py; and a row of filler tokens
    per document."""
    device = starts.device
    gen = torch.Generator(device=device).manual_seed(seed)
    width = heads * 2 * head_k_dim
    rows, seq = starts.shape
    projected = torch.randn(rows, seq, 3 * width, device=device, generator=gen)
    projected[..., width // 2 : width] *= 3  # decay logits over a wide range
    gate_bias = torch.randn(width, device=device, generator=gen) * 0.5
    aug = torch.randn(width // 2, device=device, generator=gen) * 0.5
    filler = torch.randn(len(documents), seq, 3 * width, device=device, generator=gen)
    return [projected.to(torch.bfloat16), gate_bias, aug], filler.to(torch.bfloat16)


def leaves(tensors, dtype=None):
    return [t.detach().to(dtype or t.dtype).clone().requires_grad_() for t in tensors]


def fp64_alone(inputs, heads, documents, cotangent, **reference_kwargs):
    """(y, grads) of each document alone through the fp64 reference (mix_references.reference_mix)."""
    projected, gate_bias, aug = inputs = leaves(inputs, torch.float64)

    def one(piece):
        return reference_mix(
            piece, gate_bias, aug, heads, seq_first=False, chunk_size=REFERENCE_CHUNK, **reference_kwargs
        )

    y = each_document_alone(one, projected, documents)
    return y.detach(), torch.autograd.grad(y, inputs, cotangent.double())


def packed_check(mix, heads, *, device="cpu", seed=5, head_k_dim=64, reset=True, against_fp64=True):
    """mix(projected, gate_bias, aug_balance, document_starts) -> y (B, T, W), the path under test.

    Returns [(comparison, part, relative error, bound or None)]: `itself` and `fp64` (module docstring), and
    `floor`, the bf16-core-io reference against fp64 (printed, and what the fp64 bounds derive from).
    reset=False hands the path no document_starts: what a broken reset looks like, for the check's own tests, which
    may also leave out the fp64 comparison (against_fp64=False).
    """
    starts, documents = packed_starts(device=device)
    inputs, filler = draw_inputs(starts, documents, heads, head_k_dim, seed)
    fast = leaves(inputs)
    ours = mix(*fast, starts if reset else None)
    # One cotangent, rounded to the kernel dtype once: every side sees exactly the same values. Seeds 5 and 1 on the
    # GPU: the draw that failed the earlier form of the test (9.4e-2 on d projected against fp64).
    gen = torch.Generator(device=device).manual_seed(1)
    cotangent = torch.randn(ours.shape, device=device, generator=gen).to(ours.dtype)
    grads = torch.autograd.grad(ours, fast, cotangent)

    alone_inputs = leaves(inputs)
    alone = from_alone_rows(mix(alone_rows(alone_inputs[0], filler, documents), *alone_inputs[1:], None), documents)
    alone_grads = torch.autograd.grad(alone, alone_inputs, cotangent)
    itself = mix_errors(ours, grads, alone.double(), [g.double() for g in alone_grads], heads)

    rows = [("itself", part, err, ITSELF_TOLERANCE) for part, err in itself.items()]
    if not against_fp64:
        return rows
    exact, exact_grads = fp64_alone(inputs, heads, documents, cotangent)
    measured = mix_errors(ours, grads, exact, exact_grads, heads)
    floor_y, floor_grads = fp64_alone(inputs, heads, documents, cotangent, bf16_core_io=True)
    floor = mix_errors(floor_y, floor_grads, exact, exact_grads, heads)
    rows += [("fp64", p, err, max(FP64_TOLERANCE, FLOOR_FACTOR * floor[p])) for p, err in measured.items()]
    return rows + [("floor", part, err, None) for part, err in floor.items()]


def failures(rows):
    return [(comparison, part, err, bound) for comparison, part, err, bound in rows if bound and not err <= bound]
