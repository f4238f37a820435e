"""The words of questions the parser knows, by what they mean: precisions, tasks, architecture types and families,
device types, superlatives, negation, subject nouns, and the words that carry no meaning (stopwords).

Each table pairs a regular expression (matched word-bounded, lower case) with the value it stands for.
"""
from __future__ import annotations

PRECISIONS: list[tuple[str, str]] = [
    (r"fp32|float32|full[- ]precision|single[- ]precision", "fp32"),
    (r"tf32|tensorfloat(?:-?32)?", "tf32"),
    (r"fp16|float16|half[- ]precision|half(?!\s+an?\s+(?:thousand|million|billion|trillion|milli|micro|second|"
     r"mega|giga|kilo|meg|gig|watt|joule|[gmk](?:macs?|flops?)\b|[kmg]b\b))", "fp16"),  # 'half a billion MACs',
    # 'half a GMAC' are numbers
    (r"bf16|bfloat16", "bf16"),
    (r"int8|int-8|8[- ]bit(?: integers?)?|quanti[sz]ed", "int8"),
    (r"int4|int-4|4[- ]bit(?: integers?)?", "int4"),
    (r"fp8|float8|fp-8", "fp8"),
    (r"fp4|float4|nvfp4|fp-4", "fp4"),
]

TASK_WORDS: list[tuple[str, str]] = [
    (r"object\s+detectors?|object\s+detection|detectors?|detection(?:\s+models?)?|detect", "detection"),
    (r"image\s+classifiers?|classifiers?|classification(?:\s+models?)?|classify", "classification"),
    (r"segmentation(?:\s+models?)?|segmenters?|segment", "segmentation"),
    (r"depth\s+estimators?|depth(?:\s+estimation)?", "depth"),
    (r"(?<!diffusion )(?<!diffusion-)polic(?:y|ies)|controllers?", "policy"),  # a diffusion policy: a family
    (r"language\s+models?|llms?", "language"),
]
TYPE_WORDS: list[tuple[str, str]] = [
    (r"cnns?|convnets?|convolutional(?:\s+(?:networks?|models?|nets?))?", "cnn"),
    (r"transformers?", "transformer"),
    (r"rnns?|recurrent(?:\s+(?:networks?|models?|nets?))?", "rnn"),
    (r"hybrids?", "hybrid"),
]
# the file format a model was registered from (``data.records.FORMATS``): 'onnx models', 'detectors that aren't onnx'
FORMAT_WORDS: list[tuple[str, str]] = [
    (r"onnx(?:\s+(?:format|files?|exports?))?", "onnx"),
    (r"torch\s*script(?:\s+(?:format|files?))?|jit[\s-]+(?:traced|scripted)", "torchscript"),
    (r"exported[\s_]programs?|torch\.export(?:ed)?|pt2(?:\s+files?)?", "exported_program"),
    (r"state[\s_]dicts?", "state_dict"),
    (r"safetensors?(?:\s+(?:format|files?))?", "safetensors"),
    (r"pickled|pickles?", "pickle"),
    (r"(?:hugging\s*face|hf)\s+configs?", "hf_config"),
]
# the words people use for a family -> the family name the analyser writes (analysis/patterns/rules.py)
FAMILY_ALIASES: dict[str, str] = {
    "vision transformer": "vit", "deit": "vit", "u-net": "unet", "u net": "unet", "effnet": "efficientnet",
    "gpt-2": "gpt", "gpt2": "gpt", "distilbert": "bert", "googlenet": "inception", "point net": "pointnet",
    "point-net": "pointnet", "diffusion policies": "diffusion-policy", "diffusion u-net": "diffusion-unet",
    "long short-term memory": "lstm", "seq2seq": "encoder-decoder",
}
# every family the analyser's rules can name (tests/test_ask.py checks against analysis/patterns/rules.py), less the
# ones that are also a type or task word (transformer, cnn, rnn, hybrid, mlp is both; detector -> the detection task)
KNOWN_FAMILIES = ("resnet", "resnext", "mobilenet", "efficientnet", "vit", "swin", "maxvit", "mobilevit",
                  "efficientformer", "levit", "pvt", "segformer", "convnext", "regnet", "densenet", "vgg", "alexnet",
                  "squeezenet", "shufflenet", "inception", "yolo", "detr", "rt-detr", "unet", "pointnet",
                  "diffusion-policy", "diffusion-unet", "bert", "gpt", "t5", "whisper", "encoder-decoder", "lstm",
                  "gru", "mlp")
DEVICE_TYPES: list[tuple[str, str]] = [
    (r"gpus?|graphics\s+cards?", "gpu"),
    (r"cpus?|processors?", "cpu"),
    (r"npus?|ai\s+accelerators?", "npu"),
    (r"tpus?", "tpu"),
    (r"socs?|systems?[- ]on[- ](?:a[- ])?chips?", "soc"),
]
# a question answered yes or no: 'is A faster than B', 'does X fit', 'can X run under 5 ms on Y'
YES_NO = r"\s*(?:is|are|does|do|has|have|will|would|can|could)\b"
# fps per watt = frames per joule = 1000 / energy per inference in mJ (read as r.energy_mj wherever it is named)
PER_WATT = r"(?:fps|frames?|inferences?|perf(?:ormance)?)[\s-]*(?:per|/)[\s-]*(?:watt|w|joule)"
SUPERLATIVES: list[tuple[str, str, bool]] = [  # pattern, field ("headroom": memory or latency slack), descending
    (r"(?:cheapest|lowest|least|smallest|minimum|best)[\s-]+(?:in[\s-]+)?(?:energy|joules)"
     r"(?:[\s-]+per[\s-]+inference)?|most[\s-]+(?:energy|power)[\s-]+efficient|most[\s-]+efficient|"
     r"cheapest[\s-]+in[\s-]+energy|cheapest|"
     # the most fps per watt is the least energy
     rf"(?:best|highest|most|max(?:imum)?|top|greatest)[\s-]+{PER_WATT}|"
     r"(?:best|highest|most)[\s-]+(?:energy|power)[\s-]+efficiency|"
     r"(?:lowest|least|smallest|minimum)[\s-]+(?:mj|millijoules)(?:[\s-]+per[\s-]+inference)?", "r.energy_mj", False),
    (rf"(?:worst|lowest|least)[\s-]+{PER_WATT}|"
     r"(?:most|highest|largest)[\s-]+energy(?:[\s-]+per[\s-]+inference)?|"
     r"least[\s-]+(?:(?:energy|power)[\s-]+)?efficient",
     "r.energy_mj", True),
    (r"(?:(?:fewest|least|lowest|smallest)[\s-]+(?:g?macs|g?flops|compute)|(?:cheapest|lightest)[\s-]+compute)"
     r"(?:[\s-]+(?:hungry|heavy|intensive|demanding|bound))?", "m.macs", False),
    (r"(?:(?:most|highest|largest)[\s-]+(?:g?macs|g?flops|compute)|heaviest[\s-]+compute)"
     r"(?:[\s-]+(?:hungry|heavy|intensive|demanding))?", "m.macs", True),
    (r"most[\s-]+(?:memory[\s-]+)?(?:headroom|room|spare[\s-]+memory|free[\s-]+memory|slack)", "headroom", True),
    (r"(?:least|lowest|smallest)[\s-]+(?:memory[\s-]+)?(?:headroom|room|slack)", "headroom", False),
    (r"(?:lowest|least|smallest|shortest|best|minimum|min)[\s-]+(?:predicted[\s-]+)?latency|fastest|quickest|"
     r"(?:highest|most|best|max(?:imum)?)[\s-]+(?:fps|frame\s*rate|throughput)", "r.latency_ms", False),
    (r"(?:highest|longest|worst|maximum|max)[\s-]+(?:predicted[\s-]+)?latency|slowest|"
     r"(?:lowest|least|worst)[\s-]+(?:fps|frame\s*rate|throughput)", "r.latency_ms", True),
    (r"(?:lowest|least|smallest)[\s-]+power(?:[\s-]+(?:draw|budget|consumption))?|most[\s-]+frugal",
     "h.power_w", False),
    (r"(?:highest|most|largest)[\s-]+power(?:[\s-]+(?:draw|budget|consumption))?|most[\s-]+power[- ]hungry",
     "h.power_w", True),
    # 'the most powerful jetson': compute, not power draw (the fp16 peak: every GPU and SoC states one)
    (r"most[\s-]+powerful|strongest|beefiest|most[\s-]+capable", "h.peak_fp16_tflops", True),
    (r"least[\s-]+powerful|weakest|least[\s-]+capable", "h.peak_fp16_tflops", False),
    (r"(?:most|largest|biggest|highest|max(?:imum)?)[\s-]+(?:peak[\s-]+)?activations?(?:[\s-]+(?:memory|bytes|size))?",
     "m.activation_bytes", True),
    (r"(?:least|fewest|smallest|lowest|min(?:imum)?)[\s-]+(?:peak[\s-]+)?activations?(?:[\s-]+(?:memory|bytes|size))?",
     "m.activation_bytes", False),
    (r"(?:highest|largest|most|greatest|max(?:imum)?)[\s-]+(?:arithmetic|operational)[\s-]+intensity",
     "r.arithmetic_intensity", True),
    (r"(?:lowest|smallest|least|min(?:imum)?)[\s-]+(?:arithmetic|operational)[\s-]+intensity",
     "r.arithmetic_intensity", False),
    (r"(?:most|highest[\s-]+number[\s-]+of|largest[\s-]+number[\s-]+of)[\s-]+layers|deepest", "m.layers", True),
    (r"(?:fewest|least|lowest[\s-]+number[\s-]+of|smallest[\s-]+number[\s-]+of)[\s-]+layers|shallowest", "m.layers",
     False),
    (r"smallest|tiniest|lightest|leanest|most[\s-]+(?:compact|lightweight)|fewest[\s-]+(?:param(?:eter)?s|weights)|"
     r"least[\s-]+weights|least[\s-]+param(?:eter)?s|"
     r"lowest[\s-]+param(?:eter)?[\s-]+count", "m.params", False),
    (r"largest|biggest|heaviest|bulkiest|most[\s-]+(?:param(?:eter)?s|weights)|highest[\s-]+param(?:eter)?[\s-]+count",
     "m.params", True),
]
ORDINALS = {"second": 2, "2nd": 2, "third": 3, "3rd": 3, "fourth": 4, "4th": 4, "fifth": 5, "5th": 5, "sixth": 6,
            "6th": 6, "seventh": 7, "7th": 7, "eighth": 8, "8th": 8, "ninth": 9, "9th": 9, "tenth": 10, "10th": 10}
NUMBER_WORDS = {"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9,
                 "ten": 10, "twenty": 20}
NEGATION = (r"(?:not|except(?:\s+for)?|excluding|exclude|other\s+than|apart\s+from|besides|without|no|but\s+not|"
            r"aren't|isn't|arent|isnt|non|never|neither|nor|don't|doesn't|dont|doesnt|cannot|can't|won't)")
MODEL_WORDS = r"models?|networks?|nets?|architectures?|ones?"
HW_WORDS = (r"devices?|hardware|boards?|chips?|accelerators?|targets?|platforms?|where|(?:power\s+)?modes|"
            r"specs?|specifications")
PLURAL_NOUNS = {"models", "networks", "nets", "ones", "devices", "boards", "chips", "accelerators", "targets",
                 "platforms", "configs", "configurations", "options", "detectors", "classifiers", "policies",
                 "transformers", "cnns", "rnns", "gpus", "cpus", "npus", "tpus", "segmenters", "controllers"}
STOPWORDS = set("""
a an the of on in at for to with that this these those is are be been being was were can could would will should
shall may might must do does did done run runs running ran execute executes executed go goes get gets got there
their its it it's than then and or i we you me my our your us please which what whats what's who whom whose how
when show list give gives find tell all any some each every both either by per from into onto as if about so
fast quick speed latency latencies time times inference inferences predicted prediction estimated expected mode
modes power precision setting settings config configs configuration configurations option options one ones
have has having under over among across same also just only really very fine ok okay need needs needing needed want wants wanting like
hold holds holding work works working handle handles handling support supports supported deploy deployed deploying use using used
frame frames image images second per budget rate result results answer model-wise here now still yet
registry catalog catalogue database zoo collection good well suitable decent great nice disk registered stored
total altogether overall weigh weighs weighing enough rank ranked ranking sort sorted order ordered
compare comparing versus vs single way ways kind kinds type types take takes taking reach reaches reaching hit hits
achieve achieves manage manages draw draws drawing consume consumes consuming sustain sustains uses available
exist exists anything something everything anyone stuff thing things range bracket band much gives give
carry carries carrying our ours whats lot lots bit ever first sorted order ordered energy but though while whereas offer offers offering provide provides
weights whose mean means leave leaves gimme lemme yo sup we've weve i've ive you've anywhere that's thats it's there's theres here's w/ r s wat wht wich whcih whats hw u ur pls plz thx thanks hey hi hello
""".split())
GENERIC_DEVICE_WORDS = {"model", "models", "gb", "tb", "mb", "x", "b", "m", "cpu", "gpu", "tpu", "npu", "soc",
                        "usb", "pcie", "original", "firmware", "jetpack", "super", "core", "sxm", "accelerator",
                        "ai", "kit", "the", "a", "an", "and", "or", "of", "edge", "lpddr", "hbm",
                        "gddr", "dev", "developer", "typical", "default", "max", "with", "on", "in", "for", "to",
                        "at", "is", "it", "tops", "tflops", "teraops", "peak"}  # a measure, not a device's name


TYPE_TOKENS = {"gpu", "cpu", "npu", "tpu", "soc"}
