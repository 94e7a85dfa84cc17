# Where the build's time went (deeptheory.timeline): its jobs over time in GPU and CPU lanes,
# training throughput, and the wall and core-seconds per kind of job. It reads every job's
# benchmark, so it comes last: its inputs are everything the build makes. Nothing reads it,
# so drawing it again reruns nothing else; its own benchmark is left out of what it draws.


rule timeline:
    input:
        build_outputs(),
    output:
        png=report("results/timeline.png", caption="../report/timeline.rst", category="Build",
                   labels={"file": "timeline"}),
        csv=report("results/timeline.csv", caption="../report/timeline.rst", category="Build",
                   labels={"file": "time per kind of job"}),
    log:
        "logs/timeline.log",
    benchmark:
        "benchmarks/timeline.tsv"
    localrule: True
    conda:
        ENV
    script:
        "../scripts/timeline.py"
