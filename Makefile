# Two commands from nothing: `make demo` and `make test`. Both create .venv when it is missing.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEMO := demo-output

.PHONY: demo test install bench clean-demo

install: $(STAMP)

# torch and torchvision are named in the same pip call as everything else, all pinned by constraints.txt.
$(STAMP): setup.py pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip>=24"
	$(BIN)/pip install --quiet -c constraints.txt torch==2.14.1 torchvision==0.29.1 -e '.[dask,test]'
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/python -m pytest

demo: $(STAMP)
	rm -rf $(DEMO)
	$(BIN)/hbens synth $(DEMO) --images 4 --models 3 --pngs
	$(BIN)/python -c "import segmentation_models_pytorch as smp; smp.create_model('Unet', \
		'tu-mobilenetv3_small_050', encoder_weights=None, classes=29).save_pretrained('$(DEMO)/untrained-unet')"
	$(BIN)/hbens predict --ckpt $(DEMO)/untrained-unet --images $(DEMO)/images -o $(DEMO)/probabilities \
		--size 256 --tta hflip --csv $(DEMO)/predicted.csv --quiet
	$(BIN)/hbens check $(DEMO)/predicted.csv
	$(BIN)/hbens fuse $(DEMO)/model1.csv $(DEMO)/model2.csv $(DEMO)/model3.csv -o $(DEMO)/fused.csv
	$(BIN)/hbens clean $(DEMO)/fused.csv --min-area 50 --largest --fill-holes -o $(DEMO)/cleaned.csv
	$(BIN)/hbens check $(DEMO)/cleaned.csv
	$(BIN)/hbens show $(DEMO)/cleaned.csv --images $(DEMO)/images -o $(DEMO)/cleaned.png --scale 0.3
	for name in model1 fused cleaned; do \
		echo "== $$name"; $(BIN)/hbens score $(DEMO)/$$name.csv --gt $(DEMO)/outputs_json | tail -n 1; done

bench: $(STAMP)
	$(BIN)/python benchmarks/rle.py
