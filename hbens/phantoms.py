"""Hand-like phantoms: the 29 bones as polygons laid out like a hand X-ray, and their rendering.

A hand is built in a canonical frame (a right hand, fingers up, thumb on the left, units of
pixels at 2048 x 2048) from a template measured on real masks: five finger chains on the
metacarpal bases, eight carpals between them and the radius and ulna.  Every bone is sized to a
target area and every required overlap is reached by sliding one bone towards its partner
until the overlap, as a fraction of the smaller bone, equals a target drawn from the middle of
the range seen on real masks.  Areas and overlaps are solved for the rasterised masks: a filled
polygon covers about half a pixel more than its outline, so outlines are grown by half an
output pixel when measured.  A random similarity transform (scale, rotation, mirror for a left
hand, shift) then puts the hand in the frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from hbens.classes import ARM, CLASSES, FINGERS, IMAGE_SHAPE, WRIST

SHAPES: dict[str, tuple[float, float, float, float, float, float]] = {
    "distal": (1.0, 0.55, 1.0, 0.15, 3.0, 3.0),
    "middle": (1.0, 0.85, 1.0, 0.28, 3.0, 3.0),
    "proximal": (1.0, 0.8, 1.0, 0.3, 3.0, 3.0),
    "metacarpal": (0.9, 1.0, 1.0, 0.35, 2.5, 2.5),
    "radius": (0.45, 1.0, 2.5, 0.0, 12.0, 4.0),
    "ulna": (0.75, 1.0, 3.0, 0.05, 12.0, 2.5),
}
"""Long-bone outlines: base width, head width, flare exponent, waist, base and head roundness."""

FINGER_CHAINS: tuple[tuple[tuple[str, str, float, float, float], ...], ...] = (
    (("finger-3", "metacarpal", 320, 28000, -37), ("finger-2", "proximal", 230, 18000, -25),
     ("finger-1", "distal", 150, 9000, -30)),
    (("finger-7", "metacarpal", 470, 39000, -3), ("finger-6", "proximal", 290, 23000, -7),
     ("finger-5", "middle", 165, 11000, -9), ("finger-4", "distal", 125, 5900, -7)),
    (("finger-11", "metacarpal", 465, 37000, 6), ("finger-10", "proximal", 315, 26000, 2),
     ("finger-9", "middle", 190, 13000, 1), ("finger-8", "distal", 128, 6600, 1)),
    (("finger-15", "metacarpal", 430, 29000, 12), ("finger-14", "proximal", 300, 23000, 10),
     ("finger-13", "middle", 188, 12500, 10), ("finger-12", "distal", 128, 6400, 5)),
    (("finger-19", "metacarpal", 380, 29000, 19), ("finger-18", "proximal", 240, 17000, 27),
     ("finger-17", "middle", 135, 8000, 30), ("finger-16", "distal", 118, 4800, 25)),
)
"""Per finger, wrist to tip: class, outline kind, length, area and tilt from vertical (degrees)."""

CARPALS: dict[str, tuple[float, float, float]] = {
    "Scaphoid": (1.55, 67.5, 10500), "Lunate": (1.4, 32.5, 8000), "Capitate": (1.7, 94.5, 16500),
    "Hamate": (1.6, 117.5, 12000), "Triquetrum": (1.5, 140, 8500), "Pisiform": (1.35, 87, 4400),
    "Trapezoid": (1.05, 8, 7000), "Trapezium": (1.35, 80.7, 10000),
}
"""Carpal ellipses: axis ratio, long-axis angle (degrees, image axes) and area."""

FOREARM: dict[str, tuple[str, tuple[float, float], float, float, float, float]] = {
    "Radius": ("radius", (885, 1612), 500, 74000, 2, -0.3),
    "Ulna": ("ulna", (1070, 1645), 460, 38000, -2, 0.0),
}
"""Radius and ulna: outline kind, distal end, length, area, tilt of the shaft (degrees) and slant
of the distal end (the radial styloid reaches further towards the fingers)."""

OVERLAPS: dict[tuple[str, str], tuple[float, float]] = {
    ("Triquetrum", "Pisiform"): (0.58, 1.0), ("Trapezium", "Trapezoid"): (0.23, 0.66),
    ("Capitate", "Scaphoid"): (0.07, 0.20), ("Capitate", "Hamate"): (0.01, 0.18),
    ("Scaphoid", "Radius"): (0.05, 0.25), ("Lunate", "Radius"): (0.02, 0.21),
    ("finger-19", "Hamate"): (0.05, 0.18), ("finger-7", "Trapezium"): (0.01, 0.14),
}
"""Overlaps present on every real image, as a fraction of the smaller bone: (low, high)."""

JOINT_TARGETS = (0.008, 0.025)
"""Targets for the overlap of neighbouring bones of a finger, as a fraction of the smaller one:
real masks have 0.001-0.04, and rasterisation at small sizes moves it by up to about 0.01."""

METACARPAL_SEATS: dict[str, tuple[str, tuple[float, float], str, tuple[float, float]]] = {
    "finger-3": ("Trapezium", (-61, -4), "Trapezium", (0.0, 0.02)),
    "finger-7": ("Trapezoid", (-12, -37), "Trapezium", OVERLAPS[("finger-7", "Trapezium")]),
    "finger-11": ("Capitate", (-20, -95), "Capitate", (0.0, 0.02)),
    "finger-15": ("Hamate", (-28, -63), "Hamate", (0.0, 0.02)),
    "finger-19": ("Hamate", (51, -30), "Hamate", OVERLAPS[("finger-19", "Hamate")]),
}
"""Metacarpal bases: the carpal they start from, the template offset from its centre, and the
carpal they are slid against with the range of their overlap."""


def polygon_area(points: np.ndarray) -> float:
    """Area of a simple polygon (shoelace formula)."""
    x, y = points[:, 0], points[:, 1]
    return 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))


def polygon_perimeter(points: np.ndarray) -> float:
    """Length of a closed polygon's outline."""
    return float(np.linalg.norm(points - np.roll(points, -1, axis=0), axis=1).sum())


def raster_area(points: np.ndarray, grow: float) -> float:
    """Area that the filled polygon covers when its outline is grown by ``grow`` (half a pixel)."""
    return polygon_area(points) + grow * polygon_perimeter(points)


def grown_hull(points: np.ndarray, grow: float) -> np.ndarray:
    """Convex hull of the polygon grown by ``grow``, as float32 for OpenCV's convex clipping."""
    turn = np.linspace(0, 2 * np.pi, 16, endpoint=False)
    disc = grow * np.stack([np.cos(turn), np.sin(turn)], axis=1)
    cloud = (points[:, None, :] + disc[None]).reshape(-1, 2).astype(np.float32)
    return cv2.convexHull(cloud)[:, 0, :]


def long_bone(length: float, kind: str, *, n: int = 40) -> np.ndarray:
    """Outline of a long bone of unit width along +y, base at the origin, head at ``length``.

    The half-width blends the base and head widths, narrows to a waist mid-shaft and is rounded
    off at both ends by a superellipse (flat for a large roundness exponent).
    """
    base, head, flare, waist, k_base, k_head = SHAPES[kind]
    t = (1 - np.cos(np.linspace(0, np.pi, n))) / 2
    k = np.where(t < 0.5, k_base, k_head)
    envelope = np.clip(1 - np.abs(2 * t - 1) ** k, 0, 1) ** (1 / k)
    half = 0.5 * (base + (head - base) * t**flare) * (1 - waist * np.sin(np.pi * t) ** 2) * envelope
    right = np.stack([half, t * length], axis=1)
    left = np.stack([-half[::-1], t[::-1] * length], axis=1)
    return np.concatenate([right[1:], left[1:]])


def carpal(ratio: float, angle: float, rng: np.random.Generator, *, n: int = 48) -> np.ndarray:
    """Outline of a unit-size carpal centred at the origin: a slightly lumpy, rotated ellipse."""
    t = np.linspace(0, 2 * np.pi, n, endpoint=False)
    lumps = 1 + sum(rng.uniform(0, 0.04) * np.cos(k * t + rng.uniform(0, 2 * np.pi)) for k in (2, 3))
    x, y = np.sqrt(ratio) * np.cos(t) * lumps, np.sin(t) * lumps / np.sqrt(ratio)
    c, s = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    return np.stack([c * x - s * y, s * x + c * y], axis=1)


def fit_width(outline: np.ndarray, area: float, grow: float) -> np.ndarray:
    """Stretch a long-bone outline across its axis so that its rasterised area is ``area``."""
    width = 1.0
    for _ in range(4):
        scaled = outline * [width, 1.0]
        width *= (area - grow * polygon_perimeter(scaled)) / polygon_area(scaled)
    return outline * [width, 1.0]


def fit_size(outline: np.ndarray, area: float, grow: float) -> np.ndarray:
    """Scale an outline about the origin so that its rasterised area is ``area``."""
    a, p = polygon_area(outline), polygon_perimeter(outline)
    scale = (-grow * p + np.sqrt((grow * p) ** 2 + 4 * a * area)) / (2 * a)
    return outline * scale


def direction(tilt: float) -> np.ndarray:
    """Unit vector pointing up (towards the fingertips) tilted by ``tilt`` degrees towards +x."""
    return np.array([np.sin(np.radians(tilt)), -np.cos(np.radians(tilt))])


def place(outline: np.ndarray, base: np.ndarray, axis: np.ndarray) -> np.ndarray:
    """Put a long-bone outline (along +y) with its base at ``base`` and its axis along ``axis``."""
    normal = np.array([-axis[1], axis[0]])
    return base + outline[:, :1] * normal + outline[:, 1:] * axis


def slide(moving: np.ndarray, fixed: np.ndarray, away: np.ndarray, target: float, *, grow: float,
          reach: float) -> float:
    """Offset along ``away`` that brings ``moving``'s overlap with ``fixed`` to ``target``.

    Scans offsets in ``[-reach, reach]`` for the outermost one where the overlap falls through
    the target, then bisects; a bounded search, so an unreachable target gives the closest offset.
    """
    hull_m, hull_f = grown_hull(moving, grow), grown_hull(fixed, grow)
    smaller = min(raster_area(moving, grow), raster_area(fixed, grow))

    def fraction(offset: float) -> float:
        return cv2.intersectConvexConvex(hull_m + (offset * away).astype(np.float32), hull_f)[0] / smaller

    grid = np.linspace(-reach, reach, 17)
    values = np.array([fraction(d) for d in grid])
    falls = np.nonzero((values[:-1] >= target) & (values[1:] < target))[0]
    if falls.size == 0:
        return float(grid[np.argmin(np.abs(values - target))])
    low, high = grid[falls[-1]], grid[falls[-1] + 1]
    for _ in range(18):
        middle = (low + high) / 2
        low, high = (middle, high) if fraction(middle) >= target else (low, middle)
    return float((low + high) / 2)


def mid_range(rng: np.random.Generator, bounds: tuple[float, float]) -> float:
    """A target from the middle half of a range, so that rasterisation cannot push it out."""
    low, high = bounds
    return float(rng.uniform(low + (high - low) / 4, high - (high - low) / 4))


def arm_bones(rng: np.random.Generator, grow: float) -> dict[str, np.ndarray]:
    """Radius and ulna in the canonical frame, their distal ends up."""
    bones = {}
    for name, (kind, head, length, area, tilt, slant) in FOREARM.items():
        axis = direction(tilt + rng.normal(0, 1))
        outline = fit_width(long_bone(length, kind), area * rng.uniform(0.98, 1.02), grow)
        outline[:, 1] += slant * outline[:, 0] * (outline[:, 1] / length) ** 4
        bones[name] = place(outline, np.asarray(head) - length * axis, axis)
    return bones


def carpal_bones(rng: np.random.Generator, arm: dict[str, np.ndarray], grow: float) -> dict[str, np.ndarray]:
    """The eight carpals, each slid against its partner until their overlap is on target."""
    shapes = {name: fit_size(carpal(ratio * rng.uniform(0.95, 1.05), angle + rng.normal(0, 6), rng),
                             area * rng.uniform(0.94, 1.06), grow)
              for name, (ratio, angle, area) in CARPALS.items()}
    bones = dict(arm)
    up = np.array([0.0, -1.0])

    def settle(name: str, start: np.ndarray, partner: str, away: np.ndarray, reach: float = 120) -> None:
        away = away / np.linalg.norm(away)
        moving = shapes[name] + start
        pair = (name, partner) if (name, partner) in OVERLAPS else (partner, name)
        offset = slide(moving, bones[partner], away, mid_range(rng, OVERLAPS[pair]), grow=grow, reach=reach)
        bones[name] = moving + offset * away

    def centre(name: str) -> np.ndarray:
        return bones[name].mean(axis=0)

    settle("Scaphoid", np.array([865.0, 1560.0]), "Radius", up)
    settle("Lunate", np.array([970.0, 1600.0]), "Radius", up)
    start = centre("Lunate") + [-44, -119]
    settle("Capitate", start, "Scaphoid", start - centre("Scaphoid"))
    start = centre("Capitate") + [93, -19]
    settle("Hamate", start, "Capitate", start - centre("Capitate"))
    bones["Triquetrum"] = shapes["Triquetrum"] + centre("Lunate") + [80, -60]
    settle("Pisiform", centre("Triquetrum"), "Triquetrum", np.array([20.0, 13.0]))
    bones["Trapezoid"] = shapes["Trapezoid"] + centre("Capitate") + [-88, -21]
    settle("Trapezium", centre("Trapezoid"), "Trapezoid", np.array([-32.0, 5.0]))
    return bones


def finger_chain(rng: np.random.Generator, chain: tuple[tuple[str, str, float, float, float], ...],
                 wrist: dict[str, np.ndarray], grow: float) -> dict[str, np.ndarray]:
    """One finger, wrist to tip: its metacarpal seated on a carpal, then each phalanx just touching
    the bone before it."""
    splay = rng.normal(0, 1.5)
    bones = {}
    joint = None
    for name, kind, length, area, tilt in chain:
        axis = direction(tilt + splay + rng.normal(0, 1.5))
        length *= rng.uniform(0.96, 1.04)
        outline = fit_width(long_bone(length, kind), area * rng.uniform(0.94, 1.06), grow)
        if joint is None:
            seat, offset, against, bounds = METACARPAL_SEATS[name]
            base, partner = wrist[seat].mean(axis=0) + offset, wrist[against]
            target, reach = mid_range(rng, bounds), 150.0
        else:
            base, partner, previous_length = joint
            target, reach = rng.uniform(*JOINT_TARGETS), 0.4 * min(length, previous_length)
        bone = place(outline, base, axis)
        shift = slide(bone, partner, axis, target, grow=grow, reach=reach)
        bones[name] = bone + shift * axis
        joint = (base + (shift + length) * axis, bones[name], length)
    return bones


def hand_phantom(rng: np.random.Generator, *, shape: tuple[int, int] = IMAGE_SHAPE,
                 side: str = "left") -> dict[str, np.ndarray]:
    """One polygon (N x 2, x then y) per class, laid out like a hand X-ray of ``shape``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of every random choice: the same state gives the same hand.
    shape : (int, int), keyword-only
        Height and width of the frame; sizes scale with the smaller side (2048 is real size).
    side : {"left", "right"}, keyword-only
        Which hand: a right hand has its thumb on the left of the picture, a left hand is its
        mirror image.

    Returns
    -------
    dict of str to ndarray
        The 29 classes in canonical order, each a float polygon inside the frame.
    """
    if side not in ("left", "right"):
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    unit = min(shape) / 2048
    scale = rng.uniform(0.965, 1.035)
    grow = 0.5 / (unit * scale)
    bones = carpal_bones(rng, arm_bones(rng, grow), grow)
    for chain in FINGER_CHAINS:
        bones.update(finger_chain(rng, chain, bones, grow))
    return frame_hand({name: bones[name] for name in CLASSES}, rng, shape=shape, scale=unit * scale,
                      mirror=side == "left")


def frame_hand(bones: dict[str, np.ndarray], rng: np.random.Generator, *, shape: tuple[int, int],
               scale: float, mirror: bool) -> dict[str, np.ndarray]:
    """Scale, rotate (up to 12 degrees), shift and, for a left hand, mirror canonical bones into the frame.

    The hand is centred across the frame with some play and put low, its forearm bones near
    the bottom edge, as on the real X-rays.  The mirror is taken last, about the frame's middle
    column, so that a left hand is exactly the mirror image of the right hand of the same draws.
    """
    height, width = shape
    angle = np.radians(rng.uniform(-12, 12))
    c, s = np.cos(angle), np.sin(angle)
    centre = np.concatenate(list(bones.values())).mean(axis=0)
    rotation = scale * np.array([[c, -s], [s, c]])
    moved = {name: (points - centre) @ rotation.T for name, points in bones.items()}
    every = np.concatenate(list(moved.values()))
    low, high = every.min(axis=0), every.max(axis=0)
    margin = 0.02 * min(shape)
    play = max(width - 2 * margin - (high[0] - low[0]), 0)
    x = margin - low[0] + rng.uniform(0.3, 0.7) * play
    y = max(height * rng.uniform(0.97, 0.99) - high[1], margin - low[1])
    placed = {name: points + [x, y] for name, points in moved.items()}
    if mirror:
        placed = {name: points * [-1, 1] + [width - 1, 0] for name, points in placed.items()}
    return placed


def soft_tissue(polygons: dict[str, np.ndarray], shape: tuple[int, int]) -> np.ndarray:
    """The hand's outline as a uint8 mask: fingers around their bones, the palm and the forearm.

    Each finger bone is grown by a margin that grows with its size, the palm is the grown
    convex hull of the metacarpals and carpals, and the forearm runs from the radius and ulna
    out of the frame, away from the wrist.
    """
    mask = np.zeros(shape, np.uint8)

    def grown(points: np.ndarray, margin: float) -> None:
        outline = np.round(points).astype(np.int32)
        cv2.fillPoly(mask, [outline], 1)
        cv2.polylines(mask, [outline], True, 1, thickness=max(1, round(2 * margin)))

    for name in FINGERS:
        grown(polygons[name], 0.3 * np.sqrt(polygon_area(polygons[name])))
    palm = np.concatenate([polygons[name] for name in FINGERS[2::4] + WRIST])
    margin = 0.35 * np.sqrt(polygon_area(polygons["Capitate"]))
    grown(cv2.convexHull(palm.astype(np.float32))[:, 0, :], margin)
    arm = np.concatenate([polygons[name] for name in ARM])
    away = arm.mean(axis=0) - np.concatenate([polygons[name] for name in WRIST]).mean(axis=0)
    far = arm + away / np.linalg.norm(away) * 2 * max(shape)
    grown(cv2.convexHull(np.concatenate([arm, far]).astype(np.float32))[:, 0, :], 1.5 * margin)
    return mask


def bone_layer(polygons: dict[str, np.ndarray], shape: tuple[int, int], *, rim: int) -> np.ndarray:
    """Bone attenuation: 1 inside each bone plus 0.6 on its cortical rim of ``rim`` pixels.

    Bones add up, so that overlapping bones look denser, as on a radiograph.
    """
    layer = np.zeros(shape, np.float32)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * rim + 1, 2 * rim + 1))
    for points in polygons.values():
        outline = np.round(points).astype(np.int32)
        left, top = np.maximum(outline.min(axis=0) - 1, 0)
        right, bottom = np.minimum(outline.max(axis=0) + 2, (shape[1], shape[0]))
        crop = np.zeros((bottom - top, right - left), np.uint8)
        cv2.fillPoly(crop, [outline - [left, top]], 1)
        layer[top:bottom, left:right] += crop + 0.6 * (crop - cv2.erode(crop, kernel))
    return layer


def render_hand(polygons: dict[str, np.ndarray], rng: np.random.Generator, *,
                shape: tuple[int, int] = IMAGE_SHAPE) -> np.ndarray:
    """An 8-bit X-ray-like picture of a hand phantom.

    Parameters
    ----------
    polygons : dict of str to ndarray
        The 29 bone polygons of :func:`hand_phantom` (x then y).
    rng : numpy.random.Generator
        Source of the texture, exposure and noise.
    shape : (int, int), keyword-only
        Height and width of the picture, the frame of the polygons.

    Returns
    -------
    ndarray
        uint8 image: a dark background, brighter soft tissue, bones brighter still with a
        brighter cortical rim and added brightness where bones overlap, a coarse trabecular
        texture, blur and noise.
    """
    height, width = shape
    unit = min(shape) / 2048
    small = (max(width // 4, 1), max(height // 4, 1))  # soft edges of 6 pixels at 2048, blurred small
    outline = cv2.resize(soft_tissue(polygons, shape).astype(np.float32), small, interpolation=cv2.INTER_AREA)
    tissue = cv2.resize(cv2.GaussianBlur(outline, (0, 0), 1.5 * unit), (width, height))
    image = bone_layer(polygons, shape, rim=max(1, round(8 * unit)))
    texture = cv2.resize(rng.standard_normal((48, 48)).astype(np.float32), (width, height),
                         interpolation=cv2.INTER_CUBIC)
    image *= 55 + 4.4 * texture
    image += 42 * tissue
    image += 14 + np.linspace(0, 6, height, dtype=np.float32)[:, None]
    image = cv2.GaussianBlur(image * np.float32(rng.uniform(0.9, 1.1)), (0, 0), max(0.5, 1.5 * unit))
    image += rng.standard_normal(shape, dtype=np.float32) * 3 + 0.5
    return np.clip(image, 0, 255, out=image).astype(np.uint8)
