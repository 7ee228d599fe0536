"""How much of PyTorch's everyday API minigrad has: counts of minigrad's ops, Tensor methods,
``nn.functional`` functions and ``nn`` modules, and how many of PyTorch's names of each kind
exist in minigrad under the same name.

    .venv/bin/python scripts/api_coverage.py            # needs PyTorch for the coverage part

A name counts when it exists; whether it behaves as PyTorch's is for the tests to say
(tests/helpers.py compares every op with PyTorch). PyTorch's lists are its public names:
``dir(torch.Tensor)`` without the in-place ``*_`` forms and dunders, ``torch.nn.functional``'s
and ``torch.nn``'s public callables, and ``torch``'s functions.
"""

import inspect

import minigrad as mg
from minigrad import nn
from minigrad.nn import functional as F


def public(names):
    return {n for n in names if not n.startswith("_")}


def minigrad_names():
    modules = {n for n in dir(nn) if inspect.isclass(getattr(nn, n))
               and issubclass(getattr(nn, n), nn.Module)}
    return {
        "ops (minigrad.ops)": set(mg.ops.__all__),
        "Tensor methods": public(dir(mg.Tensor)),
        "nn.functional": set(F.__all__),
        "nn modules": modules,
        "top-level callables": {n for n in public(dir(mg)) if callable(getattr(mg, n))},
    }


def torch_names(torch):
    import torch.nn as tnn
    import torch.nn.functional as tF

    return {
        "Tensor methods": {n for n in public(dir(torch.Tensor)) if not n.endswith("_")},
        "nn.functional": {n for n in public(dir(tF)) if inspect.isfunction(getattr(tF, n))},
        "nn modules": {n for n in public(dir(tnn)) if inspect.isclass(getattr(tnn, n))
                       and issubclass(getattr(tnn, n), tnn.Module)},
        "top-level callables": {n for n in public(dir(torch)) if callable(getattr(torch, n))
                                and not inspect.isclass(getattr(torch, n))},
    }


def main():
    ours = minigrad_names()
    print(f"{'minigrad':<22}{'names':>7}")
    for kind, names in ours.items():
        print(f"{kind:<22}{len(names):>7}")
    try:
        import torch
    except ImportError:
        print("(PyTorch is not installed: no coverage figures)")
        return
    print(f"\n{'PyTorch':<22}{'names':>7}{'in minigrad':>13}{'share':>8}")
    for kind, names in torch_names(torch).items():
        found = names & ours[kind]
        print(f"{kind:<22}{len(names):>7}{len(found):>13}{len(found) / len(names):>8.0%}")


if __name__ == "__main__":
    main()
