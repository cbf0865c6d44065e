"""Run by Blender's Python (``bpy``) in a child process of :func:`kinediff.export.export_animation`:
``python blender_fbx.py IN.glb OUT.fbx FPS`` imports the glTF rig into an empty scene whose frame
rate is FPS and writes it with Blender's FBX exporter, the animation baked. Imports nothing of
kinediff (the Python that has ``bpy`` need not have kinediff).
"""

from __future__ import annotations

import sys
from fractions import Fraction


def main(argv: list[str]) -> None:
    """``argv``: the ``.glb`` to read, the ``.fbx`` to write, the frame rate."""
    import bpy  # Blender's module (kinediff[blender]): only in this child process

    src, dst, fps = argv[0], argv[1], float(argv[2])
    bpy.ops.wm.read_factory_settings(use_empty=True)
    rate = Fraction(fps).limit_denominator(1001)
    bpy.context.scene.render.fps = rate.numerator
    bpy.context.scene.render.fps_base = rate.denominator
    bpy.ops.import_scene.gltf(filepath=src)
    actions = list(bpy.data.actions)
    if actions:
        first, last = actions[0].frame_range
        bpy.context.scene.frame_start, bpy.context.scene.frame_end = int(first), int(last)
    # every frame keyed as it is (the default simplification moves vertices by up to 2 mm)
    bpy.ops.export_scene.fbx(filepath=dst, bake_anim=True, add_leaf_bones=False,
                             bake_anim_simplify_factor=0.0)


if __name__ == "__main__":
    main(sys.argv[1:])
