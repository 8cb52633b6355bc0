# The 3-D CNN per setting (GPU rule), its test-set evaluation, Table 1 and the learning curves.


rule train_cnn:
    """Adam, cross-entropy, seeded; the model after the last epoch is kept (validation only monitored).
    A killed job resumes from resume/checkpoint.pt (not an output, so Snakemake does not delete it).
    """
    input:
        train=res("dataset", "{setting}", "train.npy"),
        train_table=res("dataset", "{setting}", "train.tsv"),
        val=res("dataset", "{setting}", "val.npy"),
        val_table=res("dataset", "{setting}", "val.tsv"),
    output:
        model=res("train", "{setting}", "model.pt"),
        history=report(
            res("train", "{setting}", "history.tsv"),
            caption="../report/train_history.rst",
            category="Classification",
            labels={"setting": "{setting}", "table": "training history"},
        ),
        hyperparameters=res("train", "{setting}", "hyperparameters.json"),
        checkpoint=res("train", "{setting}", "checkpoint.pt"),
    log:
        log("train_cnn", "{setting}.log"),
    benchmark:
        bench("train_cnn", "{setting}.tsv")
    conda:
        "../../envs/torch.yaml"
    threads: config["numerics"]["cpu_threads"]
    resources:
        gpu=1,
        runtime=train_runtime,
        mem_mb=train_mem_mb,
    params:
        model=MODEL_PARAMS,
        fc_widths=fc_widths,
        train=TRAIN_PARAMS,
        epochs=train_epochs,
        seed=config["seed"],
        numerics=config["numerics"],
        resume=res("train", "{setting}", "resume", "checkpoint.pt"),
    script:
        "../../scripts/train_cnn.py"


use rule train_cnn as train_cnn_repeat with:
    """Repeat {repeat} of a setting's training with its own seed (train.repeats > 1): the spread of Table 1 over seeds."""
    output:
        model=res("train", "{setting}", "repeat-{repeat}", "model.pt"),
        history=res("train", "{setting}", "repeat-{repeat}", "history.tsv"),
        hyperparameters=res(
            "train", "{setting}", "repeat-{repeat}", "hyperparameters.json"
        ),
        checkpoint=res("train", "{setting}", "repeat-{repeat}", "checkpoint.pt"),
    log:
        log("train_cnn", "{setting}_repeat-{repeat}.log"),
    benchmark:
        bench("train_cnn", "{setting}_repeat-{repeat}.tsv")
    params:
        model=MODEL_PARAMS,
        fc_widths=fc_widths,
        train=TRAIN_PARAMS,
        epochs=train_epochs,
        seed=config["seed"],
        numerics=config["numerics"],
        resume=res("train", "{setting}", "repeat-{repeat}", "resume", "checkpoint.pt"),
        repeat=lambda wildcards: int(wildcards.repeat),


rule evaluate_cnn:
    """Class and P(reduced) of every test image; outcome TP/TN/FP/FN with reduced = positive."""
    input:
        model=res("train", "{setting}", "model.pt"),
        images=res("dataset", "{setting}", "test.npy"),
        table=res("dataset", "{setting}", "test.tsv"),
    output:
        predictions=res("evaluate", "{setting}_predictions.tsv"),
    log:
        log("evaluate_cnn", "{setting}.log"),
    conda:
        "../../envs/torch.yaml"
    threads: config["numerics"]["cpu_threads"]
    params:
        device=config["train"]["device"],
        amp=config["train"]["amp"],
        batch_size=config["train"]["batch_size"],
        numerics=config["numerics"],
    script:
        "../../scripts/evaluate_cnn.py"


use rule evaluate_cnn as evaluate_cnn_repeat with:
    input:
        model=res("train", "{setting}", "repeat-{repeat}", "model.pt"),
        images=res("dataset", "{setting}", "test.npy"),
        table=res("dataset", "{setting}", "test.tsv"),
    output:
        predictions=res(
            "evaluate", "repeats", "{setting}_repeat-{repeat}_predictions.tsv"
        ),
    log:
        log("evaluate_cnn", "{setting}_repeat-{repeat}.log"),


rule collect_repeats:
    """Table 1 per training repeat (repeat 0 = the study's model) and its mean, SD, min and max per setting."""
    input:
        predictions=repeat_predictions,
    output:
        per_repeat=report(
            res("evaluate", "table1_repeats.tsv"),
            caption="../report/table1_repeats.rst",
            category="Classification",
            labels={"table": "Table 1 per training repeat"},
        ),
        summary=report(
            res("evaluate", "table1_repeats_summary.tsv"),
            caption="../report/table1_repeats.rst",
            category="Classification",
            labels={"table": "Table 1 over training repeats (mean, SD)"},
        ),
    log:
        log("collect_repeats.log"),
    conda:
        "../../envs/torch.yaml"
    params:
        settings=SETTINGS,
        repeats=REPEATS,
        confidence=0.95,
    script:
        "../../scripts/collect_repeats.py"


rule case_uncertainty:
    """Per test case the mean, SD and range of P(reduced) over the training repeats (train.repeats > 1);
    a case is flagged uncertain when its spread exceeds evaluate.uncertainty.threshold; per setting the
    flagged share, ensemble and repeat-0 accuracy on all and unflagged cases, repeat-0 errors flagged.
    """
    input:
        predictions=repeat_predictions,
    output:
        cases=report(
            res("evaluate", "uncertainty_cases.tsv"),
            caption="../report/uncertainty.rst",
            category="Classification",
            labels={"table": "case-level uncertainty over training repeats"},
        ),
        summary=report(
            res("evaluate", "uncertainty_summary.tsv"),
            caption="../report/uncertainty.rst",
            category="Classification",
            labels={
                "table": "uncertainty per setting: flagged, accuracy, errors caught"
            },
        ),
    log:
        log("case_uncertainty.log"),
    conda:
        "../../envs/torch.yaml"
    params:
        settings=SETTINGS,
        repeats=REPEATS,
        measure=config["evaluate"]["uncertainty"]["measure"],
        threshold=config["evaluate"]["uncertainty"]["threshold"],
        confidence=0.95,
    script:
        "../../scripts/case_uncertainty.py"


rule collect_table1:
    input:
        predictions=all_predictions,
    output:
        table=report(
            res("evaluate", "table1.tsv"),
            caption="../report/table1_table.rst",
            category="Classification",
            labels={"table": "Table 1: test-set classification"},
        ),
        figure=report(
            res("figures", "table1_metrics.png"),
            caption="../report/table1_figure.rst",
            category="Classification",
            labels={"figure": "Table 1 as bars with 95 % CIs"},
        ),
    log:
        log("collect_table1.log"),
    conda:
        "../../envs/torch.yaml"
    params:
        settings=SETTINGS,
        confidence=0.95,
    script:
        "../../scripts/collect_table1.py"


rule plot_learning_curves:
    input:
        histories=all_histories,
    output:
        figure=report(
            res("figures", "learning_curves.png"),
            caption="../report/learning_curves.rst",
            category="Classification",
            labels={"figure": "learning curves"},
        ),
    log:
        log("plot_learning_curves.log"),
    conda:
        "../../envs/torch.yaml"
    params:
        settings=SETTINGS,
    script:
        "../../scripts/plot_learning_curves.py"
