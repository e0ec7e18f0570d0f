"""Python reference of OMG-LLaVA (spec omg-llava.md); sizes come from `config`."""
