"""The Label Studio side of the annotate stage: run the server, push tasks, pull annotations.

`server` starts Label Studio in its own virtual environment; `client` and `env` talk to it
with the SDK's names and headers; `config`, `project` and `tasks` turn the label set and our
annotation files into its labelling config, project and task JSON (`rle` its brush masks);
`push`, `pull`, `report` and `sheet` are the commands. The proposal reaches this package only
as the files it wrote (`preannotation.json` and its masks): nothing here imports `propose` or
`evaluate`.
"""
