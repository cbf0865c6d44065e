"""kinediff's applications, built from the components: the quickstart (:mod:`.quickstart`), the
paper's recipe on each benchmark (:mod:`.reproduce`), the body demo (:mod:`.demos`), prediction
on your own images and videos (:mod:`kinediff.apps.predict`), the video demo
(:mod:`kinediff.apps.video_demo`) and the ``kinediff train`` / ``kinediff eval`` jobs
(:mod:`.jobs`). The command line (:mod:`kinediff.cli`) and the ``examples/`` scripts call them; the
components never import from here."""
