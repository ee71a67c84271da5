"""The financing loop (YX 四(一)一 金融产品超市, 五(二); JY 三(三)2-3; DL 三(一)2-3; JS 10,
20; AH 3, 12): products, applications, outcomes, financing needs and the month's
statistics. Pure cores here; persistence in ``financing.store``; composition in
``gateway.financing``."""
