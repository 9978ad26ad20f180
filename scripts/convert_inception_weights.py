"""Converts the standard FID Inception weights to the ``.npz`` that ``ebm_jax.evaluation.inception`` reads.

Input: pytorch-fid's port of the TensorFlow graph ``inception-2015-12-05`` (the weights behind
every published FID),

  https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/pt_inception-2015-12-05-6726825d.pth

Run once, where torch is installed:

  python scripts/convert_inception_weights.py pt_inception-2015-12-05-6726825d.pth \\
      ~/.cache/ebm_jax/fid_inception_v3.npz [--verify]

``--verify`` (needs ``pip install pytorch-fid``) runs pytorch-fid's network with the same
weights on random 299x299 input and prints the largest difference of pool3 and logits from
ours (float32 rounding, about 1e-7 of the activations' scale).
"""
import argparse
import os
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ebm_jax.evaluation import inception  # noqa: E402


def verify(state_dict, out_path: str) -> None:
    import jax
    import torch
    from pytorch_fid import inception as reference

    # fid_inception_v3() would download the weights; build the same network empty instead.
    net = reference._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    for name, block in [("Mixed_5b", reference.FIDInceptionA(192, pool_features=32)),
                        ("Mixed_5c", reference.FIDInceptionA(256, pool_features=64)),
                        ("Mixed_5d", reference.FIDInceptionA(288, pool_features=64)),
                        ("Mixed_6b", reference.FIDInceptionC(768, channels_7x7=128)),
                        ("Mixed_6c", reference.FIDInceptionC(768, channels_7x7=160)),
                        ("Mixed_6d", reference.FIDInceptionC(768, channels_7x7=160)),
                        ("Mixed_6e", reference.FIDInceptionC(768, channels_7x7=192)),
                        ("Mixed_7b", reference.FIDInceptionE_1(1280)),
                        ("Mixed_7c", reference.FIDInceptionE_2(2048))]:
        setattr(net, name, block)
    net.load_state_dict(state_dict)
    net.eval()
    pooled = {}
    net.avgpool.register_forward_hook(lambda m, i, o: pooled.update(x=o.flatten(1).numpy()))
    x = np.random.default_rng(0).uniform(-1, 1, (2, 299, 299, 3)).astype(np.float32)
    with torch.no_grad():
        logits_ref = net(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
    variables = inception.load_params(out_path)
    pool3, logits = jax.jit(inception.FIDInceptionV3().apply)(variables, x)
    bias = state_dict["fc.bias"].numpy()
    print(f"pool3: max |ours - pytorch-fid| = {np.abs(pool3 - pooled['x']).max():.3g}")
    print(f"logits: max |ours - pytorch-fid| = {np.abs(logits + bias - logits_ref).max():.3g}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pth", help="pt_inception-2015-12-05-6726825d.pth")
    parser.add_argument("out", help="the .npz to write, e.g. ~/.cache/ebm_jax/fid_inception_v3.npz")
    parser.add_argument("--verify", action="store_true",
                        help="compare with pytorch-fid's network (needs pytorch-fid)")
    args = parser.parse_args()
    import torch
    state_dict = torch.load(args.pth, map_location="cpu", weights_only=True)
    flat = inception.convert_torch_state_dict({k: v.numpy() for k, v in state_dict.items()})
    out = os.path.expanduser(args.out)
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    np.savez(out, **flat)
    inception.load_params(out)  # checks every name and shape
    print(f"wrote {out} ({len(flat)} arrays)")
    if args.verify:
        verify(state_dict, out)


if __name__ == "__main__":
    main()
