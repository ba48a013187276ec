# Copyright (c) mmuld contributors. All rights reserved.
"""SiLK-style self-supervised bootstrapping loss (paper Sec. 3.2)."""
from typing import Dict, Optional, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from mmuld.registry import MODELS
from ..utils.affine import invert_affine, transform_points
from ..utils.keypoint_ops import input_to_map_coords, map_to_input_coords
from ..utils.precision import autocast_off


def dense_correspondences(height: int, width: int, matrices: Tensor,
                          stride: float) -> Tuple[Tensor, Tensor, Tensor]:
    """Map every cell of an ``(h, w)`` map of image A into image B.

    Cell ``(u, v)`` of A (flat index ``v * w + u``) has its centre at input
    pixel ``(u + 0.5) * stride - 0.5``; it is mapped with ``matrices`` (A
    input pixels -> B input pixels) and converted back to B map
    coordinates. The correspondence is the nearest B cell; it is valid when
    that cell lies inside the map.

    Args:
        height (int): Map height h.
        width (int): Map width w.
        matrices (Tensor): ``(B, 2, 3)`` A -> B input-pixel affine matrices.
        stride (float): Map stride w.r.t. the input.

    Returns:
        tuple:
        - target (Tensor): ``(B, h*w)`` long flat index of the nearest B
          cell (clamped into the map for invalid ones).
        - valid (Tensor): ``(B, h*w)`` bool, correspondence inside B.
        - coords (Tensor): ``(B, h*w, 2)`` exact mapped B map coordinates.
    """
    dtype = matrices.dtype if matrices.is_floating_point() else torch.float32
    device = matrices.device
    ys, xs = torch.meshgrid(
        torch.arange(height, device=device, dtype=dtype),
        torch.arange(width, device=device, dtype=dtype),
        indexing='ij')
    grid = torch.stack([xs.flatten(), ys.flatten()], dim=-1)
    grid = grid[None].expand(matrices.shape[0], -1, -1)
    pts_b = transform_points(map_to_input_coords(grid, stride), matrices)
    coords = input_to_map_coords(pts_b, stride)
    r = torch.round(coords)
    valid = (r[..., 0] >= 0) & (r[..., 0] <= width - 1) & \
        (r[..., 1] >= 0) & (r[..., 1] <= height - 1)
    rx = r[..., 0].clamp(0, width - 1).long()
    ry = r[..., 1].clamp(0, height - 1).long()
    return ry * width + rx, valid, coords


def _gather_rows(x: Tensor, idx: Tensor) -> Tensor:
    """``x (B, N, D)``, ``idx (B, Q)`` -> ``(B, Q, D)``."""
    return x.gather(1, idx[..., None].expand(-1, -1, x.shape[-1]))


class _SimLogSumExp(torch.autograd.Function):
    """``logsumexp_j(<q_i, k_j> / temperature)`` and its argmax, in chunks.

    Equals ``(q @ k^T / temperature).logsumexp(-1)`` (and ``.argmax(-1)``)
    up to float rounding, but never keeps the ``(B, Q, N)`` similarity
    matrix: only ``q``, ``k`` and the ``(B, Q)`` result are saved, and the
    softmax is recomputed chunk by chunk in the backward pass.

    The similarity matrix is the only large tensor, so the passes over it
    set the cost: the queries are scaled by ``1 / temperature`` before the
    product (no division of the matrix), one ``max`` gives both the
    stabiliser and the argmax, and the exponentials are taken in place.
    """

    @staticmethod
    def forward(ctx, q: Tensor, k: Tensor, temperature: float,
                chunk: int) -> Tuple[Tensor, Tensor]:
        n_q = q.shape[1]
        lse = q.new_empty(q.shape[:2])
        arg = torch.empty(q.shape[:2], dtype=torch.long, device=q.device)
        qs = q / temperature
        kt = k.transpose(1, 2)
        for s in range(0, n_q, chunk):
            sim = qs[:, s:s + chunk] @ kt
            top, arg[:, s:s + chunk] = sim.max(-1)
            sim.sub_(top[..., None]).exp_()
            lse[:, s:s + chunk] = sim.sum(-1).log_().add_(top)
        ctx.save_for_backward(qs, k, lse)
        ctx.temperature = temperature
        ctx.chunk = chunk
        ctx.mark_non_differentiable(arg)
        return lse, arg

    @staticmethod
    def backward(ctx, grad_lse: Tensor, grad_arg: Optional[Tensor]):
        qs, k, lse = ctx.saved_tensors
        temp, chunk = ctx.temperature, ctx.chunk
        grad_q = torch.empty_like(qs)
        grad_k = torch.zeros_like(k)
        kt = k.transpose(1, 2)
        for s in range(0, qs.shape[1], chunk):
            q_c = qs[:, s:s + chunk]
            # softmax of the chunk, then scaled by d lse: d sim / temperature
            prob = torch.baddbmm(-lse[:, s:s + chunk, None], q_c, kt).exp_()
            prob.mul_(grad_lse[:, s:s + chunk, None])
            grad_q[:, s:s + chunk] = (prob @ k).div_(temp)
            grad_k.baddbmm_(prob.transpose(1, 2), q_c)
        return grad_q, grad_k, None, None


def _chunked_argmax(q: Tensor, k: Tensor, chunk: int) -> Tensor:
    """``(q @ k^T).argmax(-1)`` in query chunks, ``(B, Q)``."""
    kt = k.transpose(1, 2)
    return torch.cat([(q[:, s:s + chunk] @ kt).argmax(-1)
                      for s in range(0, q.shape[1], chunk)], dim=1)


def _flat_to_xy(idx: Tensor, width: int, dtype) -> Tensor:
    return torch.stack([(idx % width), torch.div(
        idx, width, rounding_mode='floor')], dim=-1).to(dtype)


@MODELS.register_module()
class BootstrapLoss(nn.Module):
    """SiLK-style keypoint + descriptor loss for the bootstrapping stage.

    Given detector logits and descriptor maps of a batch of images A and of
    their augmented copies B (known affine ``matrices`` A -> B, see
    :func:`mmuld.models.utils.random_affine_pair`), for each direction
    (A -> B with ``matrices`` and B -> A with their inverse):

    * query cells ``i`` of the source map (all cells, or a random subset of
      ``max_queries``) are mapped to their nearest target cell ``t(i)``
      (:func:`dense_correspondences`);
    * **descriptor loss** (NLL / InfoNCE): ``-log softmax_j(<f_i, g_j> /
      temperature)[t(i)]`` over all target cells ``j``, averaged over the
      queries whose correspondence is inside the target image. Following
      SiLK's symmetric (double-softmax) formulation, the same pairs are also
      scored the other way round (``g_{t(i)}`` against all source cells,
      true index ``i``), and the two NLLs are averaged;
    * **keypoint loss** (BCE with logits on the source detector map): query
      ``i`` is a positive when its descriptor survives the round trip:
      its nearest neighbour ``j*`` in the target lies within
      ``match_tolerance`` map cells of the true (unrounded) mapped position
      and the nearest neighbour of ``g_{j*}`` back in the source lies within
      ``match_tolerance`` of ``i`` (mutual nearest neighbour). All other
      queries (including those mapped outside the target) are negatives.

    The final losses average the two directions. Descriptors are expected to
    be L2-normalised (as output by :class:`ULDDescriptorHead`).

    Args:
        temperature (float): Softmax temperature. Defaults to 0.1.
        match_tolerance (float): Tolerance in map cells of a correct
            match. Defaults to 1.0.
        max_queries (int, optional): Random subset of query cells per
            direction (the similarity matrix is ``(B, Q, h*w)``). ``None``
            uses all cells. Defaults to 1024.
        desc_weight (float): Weight of the descriptor loss. Defaults to 1.0.
        kpt_weight (float): Weight of the keypoint loss. Defaults to 1.0.
        loss_weight (float): Global weight. Defaults to 1.0.
        memory_efficient (bool): Compute the softmax NLLs as
            ``logsumexp - target similarity`` in query chunks, recomputed in
            the backward pass (:class:`_SimLogSumExp`), in float32 outside
            any autocast, instead of materialising the ``(B, Q, h*w)``
            similarity and log-softmax matrices. The same loss up to float
            rounding (tested). Defaults to True.
        chunk_elements (int): Similarity entries per chunk of the
            memory-efficient path. Defaults to 2**24.
        exchange_weight (float): Weight of the descriptor vector exchange
            term (:meth:`_exchange_nll`, Thewlis et al. 2019), added to the
            descriptor NLL: the correspondence must also hold through
            another image of the batch, which makes descriptors agree
            across instances. Defaults to 0 (SiLK's loss alone).
        exchange_temperature (float): Softmax temperature of the soft
            match into the other image. Defaults to 0.1.
        kpt_valid_only (bool): The keypoint BCE only counts queries with a
            correspondence inside the other image (else every cell that
            the warp moves out of the image is a negative, and the
            detector learns the crop border). Defaults to False.
        kpt_cross_instance (bool): A query is a keypoint positive only if
            it also survives a round trip through another image of the
            batch (:meth:`_cross_instance_cycle`): the detector then fires
            on parts that other instances show too, not on background
            clutter. Defaults to False.
    """

    def __init__(self,
                 temperature: float = 0.1,
                 match_tolerance: float = 1.0,
                 max_queries: Optional[int] = 1024,
                 desc_weight: float = 1.0,
                 kpt_weight: float = 1.0,
                 loss_weight: float = 1.0,
                 memory_efficient: bool = True,
                 chunk_elements: int = 2**24,
                 exchange_weight: float = 0.0,
                 exchange_temperature: float = 0.1,
                 kpt_valid_only: bool = False,
                 kpt_cross_instance: bool = False):
        super().__init__()
        self.kpt_valid_only = bool(kpt_valid_only)
        self.kpt_cross_instance = bool(kpt_cross_instance)
        if exchange_weight < 0:
            raise ValueError(
                f'exchange_weight must be >= 0, got {exchange_weight}')
        self.exchange_weight = float(exchange_weight)
        self.exchange_temperature = float(exchange_temperature)
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        if match_tolerance < 0:
            raise ValueError(
                f'match_tolerance must be >= 0, got {match_tolerance}')
        if max_queries is not None and max_queries < 1:
            raise ValueError(f'max_queries must be >= 1, got {max_queries}')
        self.temperature = temperature
        self.match_tolerance = match_tolerance
        self.max_queries = max_queries
        self.desc_weight = desc_weight
        self.kpt_weight = kpt_weight
        self.loss_weight = loss_weight
        self.memory_efficient = bool(memory_efficient)
        self.chunk_elements = int(chunk_elements)

    def _direction(self, logits_x: Tensor, desc_x: Tensor, desc_y: Tensor,
                   matrices: Tensor,
                   stride: float) -> Tuple[Tensor, Tensor, Tensor]:
        """One direction x -> y.

        Returns:
            tuple: per-query NLL ``(B, Q)``, valid mask ``(B, Q)`` and
            per-query BCE ``(B, Q)``.
        """
        B, D, h, w = desc_x.shape
        hw = h * w
        fx = desc_x.flatten(2).transpose(1, 2)  # (B, hw, D)
        fy = desc_y.flatten(2).transpose(1, 2)
        target, valid, coords = dense_correspondences(h, w, matrices, stride)
        if self.max_queries is not None and hw > self.max_queries:
            q = torch.randperm(hw, device=fx.device)[:self.max_queries]
        else:
            q = torch.arange(hw, device=fx.device)
        q = q[None].expand(B, -1)
        t, v = target.gather(1, q), valid.gather(1, q)
        if self.memory_efficient:
            nll, j_star, back = self._nll_chunked(fx, fy, q, t)
        else:
            fq = _gather_rows(fx, q)  # (B, Q, D)
            ft = _gather_rows(fy, t)  # (B, Q, D)
            sim_xy = fq @ fy.transpose(1, 2) / self.temperature  # (B, Q, hw)
            sim_yx = ft @ fx.transpose(1, 2) / self.temperature  # (B, Q, hw)
            nll_xy = -sim_xy.log_softmax(-1).gather(2, t[..., None])[..., 0]
            nll_yx = -sim_yx.log_softmax(-1).gather(2, q[..., None])[..., 0]
            nll = 0.5 * (nll_xy + nll_yx)
            with torch.no_grad():
                j_star = sim_xy.argmax(-1)  # (B, Q)
                back = (_gather_rows(fy, j_star)
                        @ fx.transpose(1, 2)).argmax(-1)

        with torch.no_grad():
            dtype = coords.dtype
            true_xy = _gather_rows(coords, q)
            fwd_err = (_flat_to_xy(j_star, w, dtype) - true_xy).norm(dim=-1)
            back_err = (_flat_to_xy(back, w, dtype) -
                        _flat_to_xy(q, w, dtype)).norm(dim=-1)
            labels = v & (fwd_err <= self.match_tolerance) & \
                (back_err <= self.match_tolerance)
            if self.kpt_cross_instance:
                labels &= self._cross_instance_cycle(fx, q, w)
        lx = logits_x.flatten(1).gather(1, q)
        bce = F.binary_cross_entropy_with_logits(
            lx, labels.to(lx.dtype), reduction='none')
        if self.exchange_weight > 0:
            nll = nll + self.exchange_weight * self._exchange_nll(
                fx, fy, q, t)
        return nll, v, bce

    def _cross_instance_cycle(self, fx: Tensor, q: Tensor,
                              width: int) -> Tensor:
        """Whether each query survives a round trip through another image
        of the batch (x -> c -> x, nearest neighbours, within
        ``match_tolerance`` cells): a cell that another instance matches
        back to itself is a part both instances show, not clutter or a
        uniform region."""
        fc = fx.roll(1, dims=0)
        fq = _gather_rows(fx, q)
        j = (fq @ fc.transpose(1, 2)).argmax(-1)
        back = (_gather_rows(fc, j) @ fx.transpose(1, 2)).argmax(-1)
        err = (_flat_to_xy(back, width, fx.dtype) -
               _flat_to_xy(q, width, fx.dtype)).norm(dim=-1)
        return err <= self.match_tolerance

    def _exchange_nll(self, fx: Tensor, fy: Tensor, q: Tensor,
                      t: Tensor) -> Tensor:
        """Descriptor vector exchange (Thewlis et al., ICCV 2019).

        The query descriptor of image x is replaced by its soft match in
        another image of the batch (``c``: x rolled by one), a convex
        combination of ``c``'s descriptors, and that exchanged vector must
        still find the true correspondence in y. Matching through another
        instance makes the descriptors agree across instances (the left
        eye of one face with the left eye of another), which matching an
        image to its own warp alone does not ask for.

        Returns:
            Tensor: ``(B, Q)`` NLL of the true correspondences.
        """
        with autocast_off(fx.device.type):
            fx, fy = fx.float(), fy.float()
            fc = fx.roll(1, dims=0)
            fq = _gather_rows(fx, q)
            attn = (fq @ fc.transpose(1, 2) /
                    self.exchange_temperature).softmax(-1)
            ex = F.normalize(attn @ fc, dim=-1)
            sim = ex @ fy.transpose(1, 2) / self.temperature
            return -sim.log_softmax(-1).gather(2, t[..., None])[..., 0]

    def _nll_chunked(self, fx: Tensor, fy: Tensor, q: Tensor,
                     t: Tensor) -> Tuple[Tensor, Tensor, Tensor]:
        """Memory-light symmetric NLL, nearest neighbour and back-match.

        Returns:
            tuple: per-query NLL ``(B, Q)``, ``j*`` (argmax over y of the
            query similarities) and the argmax over x of ``g_{j*}``.
        """
        dev_type = fx.device.type
        with autocast_off(dev_type):
            fx, fy = fx.float(), fy.float()
            n = fx.shape[1]
            chunk = max(1, self.chunk_elements // max(fx.shape[0] * n, 1))
            fq = _gather_rows(fx, q)
            ft = _gather_rows(fy, t)
            lse_xy, j_star = _SimLogSumExp.apply(fq, fy, self.temperature,
                                                 chunk)
            lse_yx, _ = _SimLogSumExp.apply(ft, fx, self.temperature, chunk)
            pos = (fq * ft).sum(-1) / self.temperature
            nll = 0.5 * ((lse_xy - pos) + (lse_yx - pos))
            with torch.no_grad():
                back = _chunked_argmax(_gather_rows(fy, j_star), fx, chunk)
        return nll, j_star, back

    def forward(self,
                logits_a: Tensor,
                desc_a: Tensor,
                logits_b: Tensor,
                desc_b: Tensor,
                matrices: Tensor,
                stride: float = 1.0) -> Dict[str, Tensor]:
        """Compute the bootstrapping losses.

        Args:
            logits_a (Tensor): Detector logits of A ``(B, 1, h, w)``.
            desc_a (Tensor): Descriptor map of A ``(B, D, h, w)``.
            logits_b (Tensor): Detector logits of B ``(B, 1, h, w)``.
            desc_b (Tensor): Descriptor map of B ``(B, D, h, w)``.
            matrices (Tensor): ``(B, 2, 3)`` A -> B input-pixel matrices.
            stride (float): Stride of the maps w.r.t. the input images.

        Returns:
            dict[str, Tensor]: ``loss_boot_desc`` and ``loss_boot_kpt``
            (weighted).
        """
        if desc_a.dim() != 4 or desc_a.shape != desc_b.shape:
            raise ValueError('desc_a and desc_b must be (B, D, h, w) maps of '
                             f'the same shape, got {tuple(desc_a.shape)} and '
                             f'{tuple(desc_b.shape)}')
        B, _, h, w = desc_a.shape
        for name, lg in (('logits_a', logits_a), ('logits_b', logits_b)):
            if lg.shape != (B, 1, h, w):
                raise ValueError(f'{name} must have shape {(B, 1, h, w)}, '
                                 f'got {tuple(lg.shape)}')
        if matrices.shape != (B, 2, 3):
            raise ValueError(f'matrices must have shape {(B, 2, 3)}, got '
                             f'{tuple(matrices.shape)}')
        matrices = matrices.to(desc_a.dtype)
        nll_a, v_a, bce_a = self._direction(logits_a, desc_a, desc_b,
                                            matrices, stride)
        nll_b, v_b, bce_b = self._direction(logits_b, desc_b, desc_a,
                                            invert_affine(matrices), stride)
        nll = torch.cat([nll_a, nll_b], dim=1)
        valid = torch.cat([v_a, v_b], dim=1)
        # mean over the valid queries (0 if none) without a host sync
        count = valid.sum().clamp(min=1).to(nll.dtype)
        loss_desc = torch.where(valid, nll, nll.new_zeros(())).sum() / count
        bce = torch.cat([bce_a, bce_b], dim=1)
        if self.kpt_valid_only:
            # a cell warped out of the other image has no correspondence:
            # neither a positive nor a negative (else the detector learns
            # the crop border, where cells leave the image most often)
            loss_kpt = torch.where(valid, bce, bce.new_zeros(())).sum() / \
                count
        else:
            loss_kpt = bce.mean()
        w = self.loss_weight
        return dict(
            loss_boot_desc=loss_desc * self.desc_weight * w,
            loss_boot_kpt=loss_kpt * self.kpt_weight * w)
