"""Credit grades by the Jiangyin guide (JY 附件2, 《江阴市企业金融信贷信用等级认证指引》):
高级 / 一级 / 备选 by the indicator method (三.1), the direct method (三.2) and the
100-point method (三.3), combined as ``config.yaml`` ``grading.combine`` says.

A pure core: numpy arrays in, numpy arrays out; no Flask, no SQL, no clock (the
grading day is an argument). Every reading of the guide that it had to choose is in
docs/grading.md, citing the line.
"""
