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
    threads: 2
    resources:
        gpu=1,
        runtime=train_runtime,
        mem_mb=train_mem_mb,
    params:
        model=config["model"],
        fc_widths=fc_widths,
        train=config["train"],
        epochs=train_epochs,
        seed=config["seed"],
        resume=res("train", "{setting}", "resume", "checkpoint.pt"),
    script:
        "../../scripts/train_cnn.py"


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
    threads: 2
    params:
        device=config["train"]["device"],
        amp=config["train"]["amp"],
        batch_size=config["train"]["batch_size"],
    script:
        "../../scripts/evaluate_cnn.py"


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
