"""``torchrl-bc export``: a BC checkpoint as an SB3 ``MultiInputPolicy`` state dict."""

from __future__ import annotations

import argparse

from torchrl_bc.commands import existing_file, fail, output_file, positive_int

PROG = "torchrl-bc export"
HELP = "export a BC checkpoint to SB3 PPO / MaskablePPO (strict policy_state_dict)"
DESCRIPTION = """\
Write FILE.pt holding policy_state_dict in SB3's MultiInputPolicy layout (features extractor,
mlp_extractor.policy_net/value_net, action_net, value_net), the policy kwargs, the architecture,
the observation signature, frame_skip, normalisation notes and versions. The action head is the
BC head, so PPO starts from the BC action distribution; the value head is a fresh SB3
initialisation (critic: "fresh") unless you run `torchrl-bc warmup-critic` on the export.
Load it with torchrl_bc.sb3.load_export / make_sb3_policy_kwargs / make_sb3_env."""


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("checkpoint", type=existing_file, metavar="CKPT",
                        help="BC best.pt / last.pt")
    parser.add_argument("--out", required=True, type=output_file, help="export file (.pt)")
    parser.add_argument("--separate-critic-extractor", action="store_true",
                        help="give the critic its own features extractor (a copy of the BC one)")
    parser.add_argument("--max-entities", type=positive_int, default=256,
                        help="graph padding: entities per level the SB3 space holds")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fresh value head")


def run(args: argparse.Namespace) -> int:
    from torchrl_bc.sb3 import ExportMismatch, GraphPadding, export_checkpoint
    from torchrl_bc.train.checkpoint import CheckpointMismatch, load_checkpoint
    from torchrl_bc.train.config import RunConfig

    try:
        ckpt = load_checkpoint(args.checkpoint)
        obs = RunConfig.from_dict(ckpt["config"]).observation
        export = export_checkpoint(
            args.checkpoint, args.out,
            share_features_extractor=not args.separate_critic_extractor,
            padding=GraphPadding.for_config(obs, args.max_entities), seed=args.seed)
    except (CheckpointMismatch, ExportMismatch, FileNotFoundError, ValueError) as exc:
        return fail(PROG, exc)
    n = sum(v.numel() for k, v in export["policy_state_dict"].items()
            if not k.startswith(("pi_features_extractor.", "vf_features_extractor."))
            or not export["policy_kwargs"]["share_features_extractor"])
    print(f"wrote {args.out}: {export['architecture']['name']}, {len(export['policy_state_dict'])} "
          f"tensors ({n:,} values), frame_skip {export['frame_skip']}, critic "
          f"{export['critic']}")
    return 0
