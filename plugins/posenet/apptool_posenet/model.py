"""PoseNet in torch: a timm encoder, a fully connected layer, and two regressors (xyz, quaternion).

The loss is either PoseNet's ``||x - x̂|| + β ||q - q̂/||q̂||||`` (Kendall, Grimes
& Cipolla 2015) or the learned homoscedastic-uncertainty weighting of Kendall
& Cipolla 2017, ``||x - x̂|| e^{-s_x} + s_x + ||q - q̂|| e^{-s_q} + s_q``, with
``s_x`` and ``s_q`` trained with the network.  Labels lie on the hemisphere
w >= 0; the quaternion term takes the nearer of q̂ and -q̂, since a camera
turning through the hemisphere's edge would otherwise jump between targets.

With the scene's 3D points (``reprojection_weight`` > 0) the loss adds Kendall &
Cipolla's geometric term: how far the points seen by the image move in it when
projected by the predicted pose instead of the true one.  It weighs position
against orientation by what the image shows (a metre matters more near a wall than
across a square) instead of by one β for the whole scene.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from apptool.backbones import create_encoder

#: A point's reprojection error counts at most this (in focal lengths, about 45 degrees of view):
#: an early prediction far off, or a point behind the predicted camera, must not dominate the batch.
REPROJECTION_CLIP = 1.0
MIN_DEPTH = 1e-2  # in units of the training positions' spread


class PoseNet(nn.Module):
    """image (N, 3, S, S) -> normalised position (N, 3), unit quaternion (N, 4), pooled encoder features (N, C).

    The head sees the globally pooled features, as PoseNet's does, and with
    ``layout_channels`` > 0 also a thin 1x1-convolved copy of the last feature
    map, flattened: where things are in the picture tells where the camera is,
    and global pooling throws exactly that away.
    """

    def __init__(
        self,
        backbone: str,
        pretrained=None,
        hidden: int = 512,
        dropout: float = 0.2,
        sx_init: float = 0.0,
        sq_init: float = -3.0,
        layout_channels: int = 0,
        input_size: int = 224,
    ):
        super().__init__()
        self.input_size = input_size
        self.encoder = create_encoder(backbone, pretrained)
        channels = self.encoder.feature_info.channels()[-1]
        width = channels
        self.layout = None
        if layout_channels > 0:
            self.layout = nn.Sequential(nn.Conv2d(channels, layout_channels, 1), nn.ReLU(inplace=True), nn.Flatten())
            with torch.no_grad():
                was_training = self.encoder.training
                grid = self.encoder.eval()(torch.zeros(1, 3, input_size, input_size))[-1].shape[2:]
                self.encoder.train(was_training)
            width += layout_channels * grid[0] * grid[1]
        self.fc = nn.Sequential(nn.Linear(width, hidden), nn.ReLU(inplace=True), nn.Dropout(dropout))
        self.xyz = nn.Linear(hidden, 3)
        self.quat = nn.Linear(hidden, 4)
        with torch.no_grad():  # start near the rotation w = 1 of the label hemisphere rather than a random one
            self.quat.weight.normal_(0, 1e-3)
            self.quat.bias.copy_(torch.tensor([1.0, 0.0, 0.0, 0.0]))
        self.log_vars = nn.Parameter(torch.tensor([float(sx_init), float(sq_init)]))

    def forward(self, image: torch.Tensor, with_log_vars: bool = False):
        fmap = self.encoder(image)[-1]
        feat = fmap.mean(dim=(2, 3))
        head_in = feat if self.layout is None else torch.cat([feat, self.layout(fmap)], dim=1)
        hidden = self.fc(head_in)
        xyz = self.xyz(hidden)
        quat = F.normalize(self.quat(hidden), dim=1)
        if with_log_vars:  # the loss reads s_x, s_q through forward so that DDP sees them used
            return xyz, quat, feat, self.log_vars
        return xyz, quat, feat


def rotation_matrices(quat: torch.Tensor) -> torch.Tensor:
    """(N, 4) unit quaternions (w, x, y, z) -> (N, 3, 3) rotation matrices."""
    w, x, y, z = quat.unbind(dim=1)
    rows = (
        (1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)),
        (2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)),
        (2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)),
    )
    return torch.stack([torch.stack(row, dim=1) for row in rows], dim=1)


def reprojection_error(xyz: torch.Tensor, quat: torch.Tensor, target: torch.Tensor, points: torch.Tensor) -> torch.Tensor:
    """Mean L1 distance, in focal lengths, between the points' projections under the predicted and the true pose.

    ``points`` is (N, K, 4): x, y, z (normalised as the positions are) and a weight (0: padding).
    The rotation is world-to-camera, as in the pose files.
    """
    world, weight = points[..., :3], points[..., 3]

    def project(centre: torch.Tensor, rotation: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        camera = torch.einsum("nij,nkj->nki", rotation_matrices(rotation), world - centre[:, None])
        depth = camera[..., 2]
        return camera[..., :2] / depth.clamp(min=MIN_DEPTH)[..., None], depth

    true_uv, true_depth = project(target[:, :3], target[:, 3:])
    pred_uv, pred_depth = project(xyz, quat)
    error = (pred_uv - true_uv).abs().sum(dim=-1).clamp(max=REPROJECTION_CLIP)
    error = torch.where(pred_depth > MIN_DEPTH, error, torch.full_like(error, REPROJECTION_CLIP))
    weight = weight * (true_depth > MIN_DEPTH)
    return (error * weight).sum() / weight.sum().clamp(min=1.0)


def pose_loss(
    xyz: torch.Tensor,
    quat: torch.Tensor,
    target: torch.Tensor,
    log_vars: torch.Tensor,
    kind: str = "learned",
    beta: float = 3.0,
    points: torch.Tensor | None = None,
    reprojection_weight: float = 0.0,
) -> torch.Tensor:
    """PoseNet loss on a batch; ``target`` rows are normalised xyz then the unit quaternion (w >= 0)."""
    pos = torch.linalg.vector_norm(xyz - target[:, :3], dim=1).mean()
    # q and -q are one rotation: the nearer sign counts, so labels near w = 0 do not flip the target
    rot = torch.minimum(
        torch.linalg.vector_norm(quat - target[:, 3:], dim=1), torch.linalg.vector_norm(quat + target[:, 3:], dim=1)
    ).mean()
    if kind == "learned":
        sx, sq = log_vars[0], log_vars[1]
        loss = pos * torch.exp(-sx) + sx + rot * torch.exp(-sq) + sq
    else:
        loss = pos + beta * rot
    if points is not None and reprojection_weight > 0:
        loss = loss + reprojection_weight * reprojection_error(xyz, quat, target, points)
    return loss
