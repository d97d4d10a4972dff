"""The ``clothinggan`` command: generate, mix, edit, pca, invert and train from a shell.

Each subcommand is a thin layer over the library (the same calls the app makes); user errors end
in one ``error: …`` line and exit code 2, never a traceback.
"""
from __future__ import annotations

import argparse
import dataclasses
import re
import sys
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
from tqdm import tqdm

from clothinggan.errors import ClothingGANError, ModelMismatchError
from clothinggan.paths import write_atomic
from clothinggan.settings import PRECISIONS

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".webp"}
BIG_JOB = 16  # images; above this a progress bar is worth its line
EXIT_USER_ERROR = 2


class CommandError(ClothingGANError):
    """A command line that names something that does not exist or cannot be used."""


# -- entry point -----------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns the exit code (0 ok, 2 user error) instead of raising."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] in DELEGATED:
        return _guard(lambda: DELEGATED[argv[0]](argv[1:]))
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) or an argparse usage error (2): no exception escapes main
        return exc.code if isinstance(exc.code, int) else 0
    if not getattr(args, "command", None):
        parser.print_help()
        return 0
    return _guard(lambda: args.handler(args))


def _guard(run: Callable[[], int | None]) -> int:
    """Turn user errors into one line on stderr; real bugs keep their traceback."""
    try:
        return run() or 0
    except ClothingGANError as exc:
        print(f"error: {exc}", file=sys.stderr)
    except FileNotFoundError as exc:
        print(f"error: no such file: {exc.filename}", file=sys.stderr)
    except OSError as exc:
        print(f"error: {exc.filename or ''}: {exc.strerror or exc}", file=sys.stderr)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except SystemExit as exc:  # a delegated command's argparse (--help, usage error)
        return exc.code if isinstance(exc.code, int) else 0
    return EXIT_USER_ERROR


# -- parser ----------------------------------------------------------------------------------------
EPILOG = """\
examples:
  clothinggan generate --seeds 0-15 --psi 0.7 --out grid.png
  clothinggan generate --seeds 0-3,10 --out four.png --designs mine.npz
  clothinggan mix --a 3 --b 8 --structure 0.2 --style 0.9 --out mix.png
  clothinggan edit --seed 3 --direction "PC 0=2" --direction "PC 5=-1.5" --out edited.png
  clothinggan edit --model default --list
  clothinggan pca --samples 100000 --out comps.npz --strip 0 --out-strip pc0.png
  clothinggan invert --image dress.jpg --out reconstruction.png --design-out dress.npz
  clothinggan train --help

Seeds: "0-15" (a range, both ends included), "1,5,9", "3", "0-3,10"; at most 1024.
A design from a file: FILE.npz:NAME (a design saved with --designs, by name or id), or FILE.npz
when the file holds one design.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="clothinggan", epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Design garments with StyleGAN2: generate from seeds, mix two designs, edit along "
                    "named directions, explore principal components, invert photos, train models.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_generate(sub)
    _add_mix(sub)
    _add_edit(sub)
    _add_pca(sub)
    _add_animate(sub)
    # Listed for --help; their options belong to their own modules (see DELEGATED).
    sub.add_parser("invert", help="find the design closest to a photo (clothinggan invert --help)")
    sub.add_parser("train", help="prepare data and train a model (clothinggan train --help)")
    return parser


def _command(sub: Any, name: str, help: str, example: str) -> argparse.ArgumentParser:
    p = sub.add_parser(name, help=help, description=help, epilog=f"example:\n  {example}",
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default="default",
                   help="'default' (the embedded model), a model-zoo name, or a .safetensors/.pt/.pkl file")
    p.add_argument("--precision", choices=PRECISIONS, default="fp32",
                   help="render precision: fp32 (default: the same pixels on every machine), bf16 (about "
                        "2x faster batches on CPUs with native bf16), or auto (bf16 where it is native and this "
                        "model's renders stay within 1/255 of fp32)")
    return p


def _add_generate(sub: Any) -> None:
    p = _command(sub, "generate", "render designs from seeds into one image grid",
                 "clothinggan generate --seeds 0-15 --psi 0.7 --out grid.png --cols 4")
    p.add_argument("--seeds", default="0-15",
                   help='which designs: "0-15", "1,5,9", "0-3,10" or "random" (default 0-15)')
    p.add_argument("--random-count", type=int, default=16, help='how many designs "--seeds random" makes (default 16)')
    p.add_argument("--psi", type=float, default=0.7,
                   help="truncation: 1 is the full variety, lower is safer and plainer (default 0.7)")
    p.add_argument("--out", required=True, help="image grid to write (.png, .jpg or .webp)")
    p.add_argument("--cols", type=int, help="columns of the grid (default: about square)")
    p.add_argument("--designs", help="also save the designs (W+ codes) to this .npz, for mix/edit --design")
    p.set_defaults(handler=run_generate)


def _add_mix(sub: Any) -> None:
    p = _command(sub, "mix", "style mixing: take structure and style from two designs in chosen proportions",
                 "clothinggan mix --a 3 --b 8 --structure 0 --style 1 --out mix.png --parents")
    p.add_argument("--a", required=True, help="design A: a seed, FILE.npz:NAME or FILE.npz")
    p.add_argument("--b", required=True, help="design B: a seed, FILE.npz:NAME or FILE.npz")
    p.add_argument("--structure", type=float, default=0.0,
                   help="how much of B's structure (shape, silhouette): 0 = A's, 1 = B's (default 0)")
    p.add_argument("--style", type=float, default=1.0,
                   help="how much of B's style (colour, texture): 0 = A's, 1 = B's (default 1)")
    p.add_argument("--psi", type=float, default=0.7, help="truncation for seed designs (default 0.7)")
    p.add_argument("--out", required=True, help="image of the mix to write")
    p.add_argument("--parents", action="store_true", help="write A | mix | B side by side")
    p.add_argument("--designs", help="also save the mixed design to this .npz")
    p.set_defaults(handler=run_mix)


def _add_edit(sub: Any) -> None:
    p = _command(sub, "edit", "move a design along named directions (attribute sliders)",
                 'clothinggan edit --design mine.npz:"seed 3" --direction "PC 0=2" --direction "PC 4=-1" --out edit.png')
    src = p.add_mutually_exclusive_group()
    src.add_argument("--seed", type=int, help="start from the design of this seed")
    src.add_argument("--design", help="start from a saved design: FILE.npz:NAME or FILE.npz")
    p.add_argument("--direction", action="append", default=[], metavar="NAME=STRENGTH",
                   help="a direction and how far to go (repeat for several). NAME is a named direction "
                        "(see --list) or 'PC <i>' for principal component i; strength in σ for "
                        "components, so 2 means two standard deviations")
    p.add_argument("--layers", metavar="START:END",
                   help="edit only ws START..END-1 (default: each direction's own range, usually all)")
    p.add_argument("--psi", type=float, default=0.7, help="truncation for --seed (default 0.7)")
    p.add_argument("--samples", type=int, default=100_000,
                   help="W samples for the principal components if none are cached or shipped (default 100000)")
    p.add_argument("--out", help="image of the edited design to write")
    p.add_argument("--compare", action="store_true", help="write original | edited side by side")
    p.add_argument("--designs", help="also save the edited design to this .npz")
    p.add_argument("--list", action="store_true", help="list the model's named directions and exit")
    p.set_defaults(handler=run_edit)


def _add_pca(sub: Any) -> None:
    p = _command(sub, "pca", "compute the principal components of W (GANSpace) and optionally render one",
                 "clothinggan pca --samples 100000 --components 32 --out comps.npz --strip 0 --out-strip pc0.png")
    p.add_argument("--samples", type=int, default=100_000, help="how many w to sample (default 100000)")
    p.add_argument("--components", type=int, help="how many components (default min(64, w_dim))")
    p.add_argument("--seed", type=int, default=0, help="seed of the sampling (default 0)")
    p.add_argument("--out", help="write the components to this .npz (they are cached either way)")
    p.add_argument("--strip", type=int, metavar="COMPONENT", help="render this component as an image strip")
    p.add_argument("--out-strip", help="image of the strip to write (with --strip)")
    p.add_argument("--strip-seed", type=int, default=0, help="the design the strip starts from (default 0)")
    p.add_argument("--k-sigma", type=float, default=3.0, help="strip goes from -k to +k σ (default 3)")
    p.add_argument("--steps", type=int, default=7, help="images in the strip (default 7)")
    p.add_argument("--layers", metavar="START:END", help="ws the strip moves (default all)")
    p.add_argument("--psi", type=float, default=0.7, help="truncation of the strip's design (default 0.7)")
    p.set_defaults(handler=run_pca)


def _add_animate(sub: Any) -> None:
    p = _command(sub, "animate", "an animated GIF or MP4: a walk between two designs, or along a direction and back",
                 'clothinggan animate --from 3 --to 7 --out walk.gif\n'
                 '  clothinggan animate --seed 3 --direction "PC 0" --strength 3 --out pc0.mp4\n'
                 '  clothinggan animate --seed 3 --component 1 --layers 0:5 --out pc1.gif')
    p.add_argument("--from", "--from-seed", "--seed", dest="start", required=True,
                   help="the first design: a seed, FILE.npz:NAME or FILE.npz")
    goal = p.add_mutually_exclusive_group(required=True)
    goal.add_argument("--to", "--to-seed", help="walk to this design (a seed, FILE.npz:NAME or FILE.npz) and back")
    goal.add_argument("--direction", help="walk along this named direction or 'PC <i>' (see edit --list) and back")
    goal.add_argument("--component", type=int, metavar="I", help="walk along principal component I (as --direction 'PC I')")
    p.add_argument("--layers", metavar="START:END", help="ws the direction walk moves (default: the direction's own)")
    p.add_argument("--strength", type=float, default=3.0,
                   help="how far the direction walk goes each way (σ for components; default 3)")
    p.add_argument("--frames", type=int, default=48, help="frames in the loop (2-240, default 48)")
    p.add_argument("--fps", type=float, default=24, help="frames a second (1-60, default 24)")
    p.add_argument("--size", type=int, default=256, help="frame width and height in px (16-1024, default 256)")
    p.add_argument("--psi", type=float, default=0.7, help="truncation for seed designs (default 0.7)")
    p.add_argument("--samples", type=int, default=100_000,
                   help="W samples for principal components if none are cached or shipped (default 100000)")
    p.add_argument("--out", required=True, help="the animation to write: .gif or .mp4")
    p.set_defaults(handler=run_animate)


# -- commands --------------------------------------------------------------------------------------
def run_generate(args: argparse.Namespace) -> int:
    from clothinggan.seeds import seeds_from_text

    seeds = seeds_from_text(args.seeds, random_count=args.random_count)
    _check_image_path(args.out)
    if args.cols is not None and args.cols < 1:
        raise CommandError(f"--cols must be at least 1, got {args.cols}")
    G = _load(args.model, args.precision)
    images = _render(G, lambda chunk: G.seeds_to_ws(chunk, psi=args.psi), seeds, "generating")
    _save_image(_grid(images, args.cols), args.out)
    if args.designs:
        from clothinggan.designs import designs_from_seeds

        _save_designs(G, designs_from_seeds(G, seeds, args.psi), args.designs)
    return 0


def run_mix(args: argparse.Namespace) -> int:
    from clothinggan.designs import stack_ws
    from clothinggan.mixing import mix_designs

    for flag in ("structure", "style"):
        value = getattr(args, flag)
        if not 0.0 <= value <= 1.0:
            raise CommandError(f"--{flag} must be between 0 and 1, got {value}")
    _check_image_path(args.out)
    G = _load(args.model, args.precision)
    a, b = _design(G, args.a, args.psi, "--a"), _design(G, args.b, args.psi, "--b")
    mixed = mix_designs(a, b, args.structure, args.style)
    shown = [a, mixed, b] if args.parents else [mixed]
    _save_image(_grid(_render_ws(G, stack_ws(shown)), len(shown)), args.out)
    if args.designs:
        _save_designs(G, [mixed], args.designs)
    return 0


def run_edit(args: argparse.Namespace) -> int:
    from clothinggan.directions import edit_design, load_directions
    from clothinggan.designs import stack_ws

    G = _load(args.model, args.precision)
    if args.list:
        _print_directions(load_directions(G))
        return 0
    if args.seed is None and args.design is None:
        raise CommandError("say which design to edit: --seed S or --design FILE.npz:NAME")
    if not args.direction:
        raise CommandError('give at least one --direction NAME=STRENGTH (see --list), e.g. --direction "PC 0=2"')
    if not args.out and not args.designs:
        raise CommandError("say where the result goes: --out IMAGE and/or --designs FILE.npz")
    if args.out:
        _check_image_path(args.out)
    layers = _parse_layers(args.layers, G.num_ws) if args.layers else None
    edits = [_parse_edit(G, text, layers, args.samples) for text in args.direction]
    source = _design(G, str(args.seed) if args.seed is not None else args.design, args.psi, "--seed/--design")
    edited = edit_design(source, edits)
    if args.out:
        shown = [source, edited] if args.compare else [edited]
        _save_image(_grid(_render_ws(G, stack_ws(shown)), len(shown)), args.out)
    if args.designs:
        _save_designs(G, [edited], args.designs)
    return 0


def run_pca(args: argparse.Namespace) -> int:
    from clothinggan.components import compute_components, save_components
    from clothinggan.directions import component_strip

    if args.strip is not None and not args.out_strip:
        raise CommandError("--strip needs --out-strip IMAGE to write the strip to")
    if args.out_strip:
        _check_image_path(args.out_strip)
    if args.samples < 2:
        raise CommandError(f"--samples must be at least 2, got {args.samples}")
    G = _load(args.model, args.precision)
    try:
        with tqdm(total=100, desc="sampling W", unit="%", file=sys.stderr, disable=None) as bar:
            comps = compute_components(G, n_samples=args.samples, n_components=args.components, seed=args.seed,
                                       progress=lambda f: bar.update(round(100 * f) - bar.n))
    except ValueError as exc:  # the library's sentence names the bad setting
        raise CommandError(str(exc)) from None
    _print_components(comps)
    if args.out:
        print(f"wrote {save_components(comps, args.out)}")
    if args.strip is not None:
        if not 0 <= args.strip < comps.n_components:
            raise CommandError(f"--strip {args.strip}: there are {comps.n_components} components (0..{comps.n_components - 1})")
        if args.steps < 1:
            raise CommandError(f"--steps must be at least 1, got {args.steps}")
        start, end = _parse_layers(args.layers, G.num_ws) if args.layers else (0, G.num_ws)
        base = G.seeds_to_ws([args.strip_seed], psi=args.psi)[0]
        ws = component_strip(G, base, comps, args.strip, k_sigma=args.k_sigma, steps=args.steps,
                             layer_start=start, layer_end=end)
        _save_image(_grid(_render_ws(G, ws), len(ws)), args.out_strip)
    return 0


# -- delegated commands: their modules own their options --------------------------------------------
def run_animate(args: argparse.Namespace) -> int:
    from clothinggan import animation

    suffix = Path(args.out).suffix.lower()
    if suffix not in animation.FORMATS:
        raise CommandError(f"--out {args.out}: an animation is written as .gif or .mp4")
    animation.check_settings(args.frames, args.fps, args.size)
    if args.component is not None and args.component < 0:
        raise CommandError(f"--component {args.component}: components are numbered from 0")
    if args.layers and args.to is not None:
        raise CommandError("--layers goes with a direction walk (--direction or --component), not with --to")
    G = _load(args.model, args.precision)
    start = _design(G, args.start, args.psi, "--from")
    if args.to is not None:
        ws = animation.interpolation_ws(start.ws, _design(G, args.to, args.psi, "--to").ws, args.frames,
                                        there_and_back=True)
    else:
        name = args.direction if args.component is None else f"PC {args.component}"
        layers = _parse_layers(args.layers, G.num_ws) if args.layers else None
        direction, _ = _parse_edit(G, f"{name}=0", layers, args.samples)
        ws = animation.direction_walk_ws(start.ws, direction, args.strength, args.frames)
    with tqdm(total=len(ws), desc="frames", unit="frame", file=sys.stderr, disable=None) as bar:
        frames = animation.render_frames(G, ws, args.size, progress=lambda f: bar.update(round(f * len(ws)) - bar.n))
    data = animation.encode(frames, args.fps, suffix)
    write_atomic(args.out, data)
    print(f"wrote {args.out} ({len(frames)} frames, {len(frames) / args.fps:.1f} s, {len(data) / 1024:.0f} KB)")
    return 0


def run_invert(argv: Sequence[str]) -> int:
    invert = _optional_module("clothinggan.invert", "invert")
    parser = argparse.ArgumentParser(prog="clothinggan invert", description="find the design closest to a photo")
    if hasattr(invert, "add_arguments"):
        invert.add_arguments(parser)
    try:
        args = parser.parse_args(list(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    return invert.cli_main(args)


def run_train(argv: Sequence[str]) -> int:
    train_cli = _optional_module("clothinggan.train.cli", "train")
    return train_cli.main(list(argv))


DELEGATED: dict[str, Callable[[Sequence[str]], int]] = {"invert": run_invert, "train": run_train}


def _optional_module(name: str, command: str) -> Any:
    """Import a module that another part of the project provides, or say plainly it is missing."""
    import importlib

    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name and name.startswith(exc.name):
            raise CommandError(f"'clothinggan {command}' is not available in this installation yet "
                               f"({name} is missing)") from None
        raise


# -- pieces ----------------------------------------------------------------------------------------
def _load(spec: str, choice: str = "fp32") -> Any:
    from clothinggan.generator import pick_device
    from clothinggan.loading import load_generator
    from clothinggan.precision import apply

    G = apply(load_generator(spec, device=pick_device()), choice)
    if not G.trained:
        print(f"note: {G.meta.get('note', 'this model is untrained')}; images will be noise", file=sys.stderr)
    return G


def _render(G: Any, to_ws: Callable[[list[int]], Any], seeds: list[int], what: str) -> list[Any]:
    """Render seeds in chunks of the generator's batch size, with a bar for big jobs."""
    from clothinggan.images import to_pil

    images: list[Any] = []
    step = max(1, G.max_batch)
    with tqdm(total=len(seeds), desc=what, unit="img", file=sys.stderr,
              disable=True if len(seeds) <= BIG_JOB else None) as bar:
        for i in range(0, len(seeds), step):
            chunk = seeds[i:i + step]
            images += to_pil(G.synthesis(to_ws(chunk)))
            bar.update(len(chunk))
    return images


def _render_ws(G: Any, ws: np.ndarray) -> list[Any]:
    from clothinggan.images import to_pil

    return to_pil(G.synthesis(np.asarray(ws, dtype=np.float32)))


def _grid(images: list[Any], cols: int | None) -> Any:
    from clothinggan.images import image_grid

    return image_grid(images, cols=min(cols, len(images)) if cols else None)


def _check_image_path(path: str) -> None:
    """Fail before any work when the output name has no image type PIL can write."""
    if Path(path).suffix.lower() not in IMAGE_SUFFIXES:
        raise CommandError(f"{path}: the image must end in one of {', '.join(sorted(IMAGE_SUFFIXES))}")


def _save_image(image: Any, path: str) -> None:
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    image.save(path)
    print(f"wrote {path} ({image.width}x{image.height})")


def _save_designs(G: Any, designs: Sequence[Any], path: str) -> None:
    from clothinggan.store import LatentStore

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    store = LatentStore(model_id=G.fingerprint)
    for d in designs:
        store.add(d)
    store.save(path)
    print(f"wrote {path} ({len(designs)} design{'s' if len(designs) != 1 else ''})")


def _design(G: Any, spec: str, psi: float, flag: str) -> Any:
    """A seed ("3") or a saved design ("file.npz:NAME", "file.npz") as a Design of G's model."""
    from clothinggan.designs import Design

    spec = spec.strip()
    if re.fullmatch(r"\d+", spec):
        return Design.from_seed(G, int(spec), psi)
    path, name = _split_design_spec(spec)
    design = _find_design(_load_store(path), name, path)
    if design.model_id != G.fingerprint:
        raise ModelMismatchError(f"{flag} {spec}: the design belongs to model {design.model_id}, "
                                 f"not to the loaded model {G.fingerprint}")
    return design


def _split_design_spec(spec: str) -> tuple[Path, str | None]:
    if Path(spec).suffix.lower() in (".npz", ".json"):
        return Path(spec), None
    path, sep, name = spec.rpartition(":")
    if not sep or Path(path).suffix.lower() not in (".npz", ".json"):
        raise CommandError(f"{spec!r} is neither a seed nor a design file: write a seed (3), FILE.npz:NAME or FILE.npz")
    return Path(path), name


def _load_store(path: Path) -> Any:
    from clothinggan.store import LatentStore

    if not path.is_file():
        raise CommandError(f"{path}: no such design file")
    return LatentStore.load(path)


def _find_design(store: Any, name: str | None, path: Path) -> Any:
    """The design called ``name`` (or with that id); the only one when no name is given."""
    designs = list(store)
    if name is None:
        if len(designs) != 1:
            names = ", ".join(d.name for d in designs[:10])
            raise CommandError(f"{path} holds {len(designs)} designs; name one as {path}:NAME ({names})")
        return designs[0]
    matches = [d for d in designs if d.name == name or d.id == name]
    if not matches:
        names = ", ".join(d.name for d in designs[:10])
        raise CommandError(f"{path} has no design named {name!r} (it has: {names or 'none'})")
    return matches[0]


def _parse_layers(text: str, num_ws: int) -> tuple[int, int]:
    match = re.fullmatch(r"\s*(\d+)\s*[:-]\s*(\d+)\s*", text)
    if not match:
        raise CommandError(f"--layers {text!r}: write START:END, e.g. 0:{num_ws}")
    start, end = int(match.group(1)), int(match.group(2))
    if not 0 <= start < end <= num_ws:
        raise CommandError(f"--layers {text}: this model has ws 0..{num_ws - 1}, so 0 <= START < END <= {num_ws}")
    return start, end


def _parse_edit(G: Any, text: str, layers: tuple[int, int] | None, samples: int) -> tuple[Any, float]:
    """'NAME=STRENGTH' → (direction, strength); 'PC i' names principal component i."""
    from clothinggan.directions import load_directions

    name, sep, value = text.rpartition("=")
    name = name.strip()
    try:
        strength = float(value)
    except ValueError:
        strength = float("nan")
    if not sep or not name or not np.isfinite(strength):
        raise CommandError(f"--direction {text!r}: write NAME=STRENGTH, e.g. \"PC 0=2\" or \"Sleeve & Size=-1.5\"")
    named = {d.name.casefold(): d for d in load_directions(G)}
    pc = re.fullmatch(r"pc\s*(\d+)", name.casefold())
    if name.casefold() in named:
        direction = named[name.casefold()]
    elif pc:
        direction = _component_direction(G, int(pc.group(1)), samples)
    else:
        known = ", ".join(d.name for d in named.values()) or "none yet"
        raise CommandError(f"unknown direction {name!r}: use 'PC <i>' or a named one ({known})")
    if layers is not None:
        direction = dataclasses.replace(direction, layer_start=layers[0], layer_end=layers[1])
    return direction, strength


def _component_direction(G: Any, i: int, samples: int) -> Any:
    from clothinggan.components import components_for
    from clothinggan.directions import direction_from_component

    with tqdm(total=100, desc="principal components", unit="%", file=sys.stderr, disable=None) as bar:
        comps = components_for(G, n_samples=samples, progress=lambda f: bar.update(round(100 * f) - bar.n))
    if not 0 <= i < comps.n_components:
        raise CommandError(f"PC {i} does not exist: there are {comps.n_components} components (0..{comps.n_components - 1})")
    # σ units whatever the components' origin, so "PC 0=2" always means two standard deviations
    return direction_from_component(comps, i, f"PC {i}", unit="sigma")


def _print_directions(directions: Sequence[Any]) -> None:
    if not directions:
        print("no named directions yet: use 'PC <i>' for principal component i")
        return
    for d in directions:
        lo, hi = d.strength_range
        end = "end" if d.layer_end is None else d.layer_end
        print(f"{d.name:24s} {d.source:10s} ws {d.layer_start}..{end}  {d.unit} [{lo:g}, {hi:g}]  {d.description}")


def _print_components(comps: Any) -> None:
    print(f"{comps.n_components} components from {comps.n_samples} samples "
          f"({comps.var_ratio.sum():.1%} of the variance)")
    for i in range(min(10, comps.n_components)):
        print(f"  PC {i:<3d} σ={comps.stdev[i]:.4g}  variance {comps.var_ratio[i]:.2%}")


if __name__ == "__main__":
    sys.exit(main())
