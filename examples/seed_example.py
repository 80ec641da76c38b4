"""The user's Keras seed example, run on lstm_fast.

Only the import lines (and tf.random.set_seed, which becomes
lstm_fast.utils.set_random_seed) are changed; everything else is the Keras
script as written, including its 100 epochs. The original lines are kept as
comments. `--epochs N` overrides the 100 so a quick check can run it.

    python seed_example.py             # as the user wrote it: 100 epochs
    python seed_example.py --epochs 2  # a quick check
"""
# ruff: noqa: E402, I001  (the seed script below keeps its own order and layout)

import argparse

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--epochs", type=int, default=100, help="training epochs (the seed: 100)")
EPOCHS = parser.parse_args().epochs

# fmt: off
# ---------------------------------------------------------------- the seed script
import numpy as np
# import tensorflow as tf
# from tensorflow.keras.models import Sequential
# from tensorflow.keras.layers import LSTM, Dense
import lstm_fast as tf
from lstm_fast.models import Sequential
from lstm_fast.layers import LSTM, Dense
# 设置随机数种子
np.random.seed(0)
# tf.random.set_seed(0)
tf.utils.set_random_seed(0)
# 设置超参数
input_dim = 10 # 输入特征数
output_dim = 1 # 输出特征数
sequence_length = 20 # 序列长度
batch_size = 32 # 批量大小
hidden_units = 50 # LSTM 单元数
# 构建 LSTM 模型
model = Sequential([
LSTM(hidden_units, input_shape=(sequence_length, input_dim), return_sequences=True),
Dense(output_dim, activation='linear')
])
# 编译模型
model.compile(optimizer='adam', loss='mean_squared_error')
# 生成训练数据
X_train = np.random.rand(1000, sequence_length, input_dim)
y_train = np.random.rand(1000, output_dim)
# 训练模型
model.fit(X_train, y_train, epochs=EPOCHS, batch_size=batch_size)  # the seed: epochs=100
# 生成测试数据
X_test = np.random.rand(200, sequence_length, input_dim)
y_test = np.random.rand(200, output_dim)
# 预测
y_pred = model.predict(X_test)
# ---------------------------------------------------------------- end of the seed script
# fmt: on

print(f"y_pred.shape={y_pred.shape} dtype={y_pred.dtype}")
print(f"final training loss: {model.history.history['loss'][-1]:.4f}")
