"""Every check of a params file, in one package; nothing here trains or writes.

``ban.core.config`` checks what loading can (keys, types, values, the generation graph) without any
registry. Beyond that: ``chain`` checks the chain against the registries (each objective, network and
schedule checks its own settings) and against the data's task, as the train stages do before any
work; ``params_file`` runs every check at once, the dataset's included, for the ``validate`` stage,
presets and the launcher. (Split so that the train stages import only ``chain``, not the datasets.)
"""
